"""Where the application finds its database: the DATABASE_URL environment variable, as in production."""

import os


def database_url():
    url = os.environ.get("DATABASE_URL")
    if not url:
        raise RuntimeError("DATABASE_URL is not set")
    return url
