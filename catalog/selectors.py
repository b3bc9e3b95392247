"""Catalog reads for pages, the API and the admin; photos are prefetched so lists cost a fixed
number of queries however many products they show."""

from __future__ import annotations

from decimal import Decimal

from django.db.models import Count, Prefetch, Q, QuerySet

from catalog.models import Category, Product, ProductImage


def _with_images(queryset: QuerySet[Product]) -> QuerySet[Product]:
    images = ProductImage.objects.order_by("display_order", "id")
    return queryset.select_related("category", "category__parent").prefetch_related(
        Prefetch("images", queryset=images)
    )


def category_descendant_ids(category: Category | int) -> list[int]:
    """The category and every category below it (a listing of "Tools" shows "Tools > Hammers" too)."""
    root = category.pk if isinstance(category, Category) else int(category)
    children: dict[int | None, list[int]] = {}
    for pk, parent in Category.objects.values_list("id", "parent_id"):
        children.setdefault(parent, []).append(pk)
    found, todo = [], [root]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def product_list(
    *,
    category: Category | int | None = None,
    min_price: Decimal | None = None,
    max_price: Decimal | None = None,
    active: bool | None = True,
    search: str | None = None,
) -> QuerySet[Product]:
    """Products with category and ordered photos loaded; ``active=None`` lists hidden ones too."""
    queryset = Product.objects.all()
    if active is not None:
        queryset = queryset.filter(is_active=active)
    if category is not None:
        queryset = queryset.filter(category_id__in=category_descendant_ids(category))
    if min_price is not None:
        queryset = queryset.filter(price__gte=min_price)
    if max_price is not None:
        queryset = queryset.filter(price__lte=max_price)
    if search:
        for word in search.split():
            queryset = queryset.filter(
                Q(name__icontains=word) | Q(sku__icontains=word) | Q(description__icontains=word)
            )
    return _with_images(queryset).order_by("name", "id")


def product_get(
    *, pk: int | None = None, sku: str | None = None, active: bool | None = True
) -> Product | None:
    """One product by id or SKU with its photos, or None (also None when hidden and ``active`` is True)."""
    if (pk is None) == (sku is None):
        raise ValueError("Give exactly one of pk or sku.")
    queryset = Product.objects.filter(pk=pk) if pk is not None else Product.objects.filter(sku=sku)
    if active is not None:
        queryset = queryset.filter(is_active=active)
    return _with_images(queryset).first()


def category_list() -> QuerySet[Category]:
    """All categories with ``product_count`` (active products directly in each)."""
    return (
        Category.objects.select_related("parent")
        .annotate(product_count=Count("products", filter=Q(products__is_active=True)))
        .order_by("name", "id")
    )


def category_label(category: Category) -> str:
    """ "Tools > Hammers": the path from the top category, for lists and filters."""
    names = []
    seen: set[int] = set()
    current: Category | None = category
    while current is not None and current.pk not in seen:
        seen.add(current.pk)
        names.append(current.name)
        current = current.parent
    return " > ".join(reversed(names))
