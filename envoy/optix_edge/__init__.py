"""Generates the OPTIX edge (Envoy) configuration from typed envoy-data-plane dataclasses."""
