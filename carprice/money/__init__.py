"""Money: the market currency of an installation and the dated exchange rates into it."""
