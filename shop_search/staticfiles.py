"""Static files for the production shape: WhiteNoise's hashed + compressed storage, with the ES module
imports of the shopper page (static/js/shop/) rewritten to their hashed names too, so every module is
served with the long, immutable cache header (Django leaves module imports alone by default)."""

from whitenoise.storage import CompressedManifestStaticFilesStorage


class StaticFilesStorage(CompressedManifestStaticFilesStorage):
    support_js_module_import_aggregation = True
