"""Benchmarks (``make bench`` runs ``python -m benchmarks``): loopback only, bounded, never asserting."""
