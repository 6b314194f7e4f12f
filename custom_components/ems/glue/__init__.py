"""Home Assistant glue beyond the platform files: the device catalogue, the statistics, the
Energy dashboard, prices from entities, repair issues, the readings stream and the site card.
"""
