"""Reports for the office: read-only queries over the business database."""
