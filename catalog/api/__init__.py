"""The catalog's part of the JSON API (/api/v1/): products, their photos and categories."""
