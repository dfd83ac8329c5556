"""Stage 8: the price API: the champion answers what a described car is worth, read from the published snapshot."""
