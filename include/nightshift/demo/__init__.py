"""The demo: a synthetic payments generator (:mod:`nightshift.demo.datagen`) for tests, benchmarks
and ``nightshift generate``. The product never imports it."""
