"""Stage 1, the dataset: download, clips (the one audio loader), validation, the manifest."""
