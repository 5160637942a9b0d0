"""Serves RemoteClusterRegistration to every Pulumi language (package gloo-mesh-relay)."""

import sys

from gloo_mesh_registration.package import serve

if __name__ == "__main__":
    serve(sys.argv[1:])
