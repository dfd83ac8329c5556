"""Stage 5: the champion values every current listing and picks out the deals."""
