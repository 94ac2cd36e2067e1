"""Per-day cost of the days ``make demo`` replayed, from Airflow's metadata DB (SQLite).

Usage: python scripts/demo_times.py DB [--dataset payments] [--since ISO] [--json FILE]

The work is :mod:`nightshift_dev.demotimes`.
"""

from nightshift_dev.demotimes import main

if __name__ == "__main__":
    raise SystemExit(main())
