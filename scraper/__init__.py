"""millwatch scraper: inventory, scheduled scrapes, storage and machine status."""
