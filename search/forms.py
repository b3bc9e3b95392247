"""The shopper's forms: the search (what the no-JavaScript page posts, and what a shared page URL
carries) and the feedback on one hit."""

from collections.abc import Iterable
from decimal import Decimal

from django import forms

from catalog.models import Category
from catalog.selectors import category_label
from search.models import SearchFeedback
from search.services.feedback import MAX_RANK
from search.uploads import Crop, parse_crop


class PhotoSearchForm(forms.Form):
    # A plain FileField: the photo is read and decoded by search.uploads, which applies the query limits
    # and words the errors the same way as the JSON API.
    image = forms.FileField(required=False, label="Photo")
    url = forms.URLField(required=False, label="Image URL", assume_scheme="https", max_length=2000)
    category = forms.ChoiceField(required=False, label="Category")
    min_price = forms.DecimalField(required=False, min_value=0, decimal_places=2, label="Min price")
    max_price = forms.DecimalField(required=False, min_value=0, decimal_places=2, label="Max price")
    crop = forms.CharField(required=False, max_length=100, label="Crop (x,y,w,h as fractions)")

    def __init__(self, *args, categories: Iterable[Category] = (), **kwargs) -> None:
        super().__init__(*args, **kwargs)
        choices = [(category.slug, category_label(category)) for category in categories]
        self.fields["category"].choices = [("", "All categories"), *sorted(choices, key=lambda c: c[1])]

    def clean_crop(self) -> Crop | None:
        value = self.cleaned_data["crop"].strip()
        if not value:
            return None
        try:
            return parse_crop(value)
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from exc

    def clean(self) -> dict:
        data = super().clean()
        low: Decimal | None = data.get("min_price")
        high: Decimal | None = data.get("max_price")
        if low is not None and high is not None and low > high:
            self.add_error("max_price", "The highest price must not be below the lowest price.")
        return data

    def require_photo(self) -> None:
        """A search needs exactly one photo source; the form alone (filters only) is valid for GET."""
        image, url = self.cleaned_data.get("image"), self.cleaned_data.get("url")
        if not image and not url:
            self.add_error(None, "Choose a photo or enter an image URL to search with.")
        elif image and url:
            self.add_error(None, "Give either a photo or an image URL, not both.")


class FeedbackForm(forms.Form):
    """What a result card's "This one" / "Not what I'm looking for" buttons post without JavaScript
    (the same fields as POST /api/v1/search/feedback/)."""

    query_id = forms.CharField(max_length=1000)
    product = forms.IntegerField(min_value=1)
    verdict = forms.ChoiceField(choices=SearchFeedback.Verdict.choices)
    rank = forms.IntegerField(min_value=1, max_value=MAX_RANK)
    score = forms.FloatField(min_value=0, max_value=1)
    back = forms.CharField(required=False, max_length=2000)  # the search's own link, when it has one
