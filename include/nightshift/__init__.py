"""nightshift: the nightly life of a tabular ML model."""
