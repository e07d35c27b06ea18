"""Google AIP pieces shared by the resource-oriented slices (watchlist, alert, brokerage):
resource names with the `me` alias, signed page tokens, update masks, etags, request ids."""
