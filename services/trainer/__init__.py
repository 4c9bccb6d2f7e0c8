"""The trainer service: retrain on request, promote only a better model."""
