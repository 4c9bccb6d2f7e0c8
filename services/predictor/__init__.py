"""The predictor service: scores feature events with the active model and hot-swaps new ones."""
