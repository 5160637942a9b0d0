"""Serves RemoteClusterRegistration to every Pulumi language (package gloo-mesh-relay)."""

from pulumi.provider.experimental import component_provider_host

from components.package import COMPONENTS, PACKAGE_NAME, package_version

if __name__ == "__main__":
    component_provider_host(components=COMPONENTS, name=PACKAGE_NAME, version=package_version())
