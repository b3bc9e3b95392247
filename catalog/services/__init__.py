"""Catalog writes. Admin, API, management commands and tasks all call these, so they behave alike."""

from .images import (
    DecodedPhoto,
    ImageCreateResult,
    ImageRejected,
    decode_photo,
    product_image_create,
    product_image_delete,
    product_image_reorder,
    read_limited,
)
from .imports import ImportFileError, ImportReport, ImportRow, RowError, catalog_import
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
