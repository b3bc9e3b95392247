"""Catalog writes. Admin, API, management commands and tasks all call these, so they behave alike."""

from .images import ImageCreateResult, product_image_create, product_image_delete, product_image_reorder
from .imports import ImportFileError, ImportReport, ImportRow, RowError, catalog_import
from .photos import DecodedPhoto, ImageRejected, decode_photo, read_limited
from .products import (
    category_get_or_create,
    category_path_get_or_create,
    parse_currency,
    parse_price,
    product_create,
    product_delete,
    product_set_active,
    product_update,
)

__all__ = [
    "DecodedPhoto",
    "ImageCreateResult",
    "ImageRejected",
    "ImportFileError",
    "ImportReport",
    "ImportRow",
    "RowError",
    "catalog_import",
    "category_get_or_create",
    "category_path_get_or_create",
    "decode_photo",
    "parse_currency",
    "parse_price",
    "product_create",
    "product_delete",
    "product_image_create",
    "product_image_delete",
    "product_image_reorder",
    "product_set_active",
    "product_update",
    "read_limited",
]
