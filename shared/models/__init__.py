"""Models: algorithms, offline training, signing, artifacts and a verified model ready to serve."""
