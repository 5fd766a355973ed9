"""napari integration: the only part of the package that imports napari or Qt."""
