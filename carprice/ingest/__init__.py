"""Stage 2: the landing zone, file imports, and the raw tables every landed batch is copied into."""
