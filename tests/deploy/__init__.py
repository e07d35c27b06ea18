"""Tests of the Kubernetes manifests in deploy/."""
