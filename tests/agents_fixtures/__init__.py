"""Small programs and modules that the backend tests run as agents."""
