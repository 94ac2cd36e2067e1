"""The docker-compose topology without Docker (CeleryExecutor, workers on ``default`` and ``gpu``),
all on 127.0.0.1: ``make services-up`` / ``services-down`` / ``clean``.

    python scripts/services.py up | down | status | purge

The topology itself is :mod:`nightshift_dev.services` (the tests use it too).
"""

from nightshift_dev.services import main

if __name__ == "__main__":
    main()
