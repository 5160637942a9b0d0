"""A preview that fails where `pulumi up` would: objects that are about to be created but exist already.

pulumi-kubernetes swallows AlreadyExists from its dry run during a preview, and a Helm Release create never calls Helm
in preview (pulumi/pulumi-kubernetes ``provider/pkg/provider/provider.go``, ``helm_release.go``), so a namespace, a
root CA copy or an agent release left behind by meshctl, the guide's Helm steps or another stack passes the preview
and fails `pulumi up` half way, after other steps have run. So, in a preview, every object this registration is about
to create (its ID is still unknown: the engine knows the IDs of what the stack already manages) is looked up with
kubectl; one that exists fails the preview with a message that names it and the fix. The same goes for a namespace
that `create_remote_namespace: false` expects but that is not there. The messages of those failures (the preview's
catalogue) are written here too, beside the check that raises them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import pulumi

from .agent_generation import AgentGeneration
from .args import ClusterAccess, RegistrationSettings
from .lifecycle import (
    FIND_EXISTING,
    ForbiddenError,
    existing_objects_step,
    objects_environment,
    parse_existing,
    run_step,
)
from .rbac import RBAC_DOCS, manifest_path
from .sdk_internals import is_known


class ConflictError(pulumi.RunError):
    """An object the registration would create exists already (or one it expects is missing)."""


@dataclass(frozen=True)
class PlannedObject:
    """An object that a resource of the registration creates (``must_exist``: one it only labels)."""

    resource: pulumi.CustomResource
    ref: str
    """``namespace/<name>``, ``secret/<ns>/<name>``, ``helm-release/<ns>/<name>``, ``<resource>/<ns>/<name>``, or
    ``helm-crds/<ns>/<release>`` (CRDs that Helm installed for a release of that name in a namespace other than
    ``<ns>``, which Helm will not take over)."""
    problem: str
    must_exist: bool = False
    marked: bool = False
    """The resource carries the stack's owner label: an object with it is this stack's, being replaced (a rotated
    CA copy is replaced, its ID unknown in the preview like a new object's), not a leftover."""
    another_stack: str = ""
    """For a ``marked`` object: what is wrong when it carries another stack's owner label (that label, ``key=value``,
    is appended), in place of ``problem``, whose fix (adopt it) would take the object from a stack that manages it."""

    @property
    def lookup(self) -> str:
        return f"{self.ref}@owned" if self.marked else self.ref


@dataclass(frozen=True)
class RegistrationResources:
    """The resources of one registration that create (or, for a namespace it does not own, expect) an object; None:
    a step the registration does not take (the CA copy in insecure mode, the CRDs release of 1.x)."""

    namespace: pulumi.CustomResource
    root_ca_copy: pulumi.CustomResource | None
    crds: pulumi.CustomResource | None
    release: pulumi.CustomResource
    cluster: pulumi.CustomResource


_LEFT_BY_AN_EARLIER_REGISTRATION = (
    "left by an earlier registration (meshctl, the guide's Helm steps, another stack, or a `pulumi up` of this "
    "stack that was terminated). Fix: take it over in place with adopt: true for one pulumi up "
    "(docs/adopting.md), or deregister that registration first."
)


_IN_TWO_STACKS = (
    "one cluster name can be registered by one stack only. Fix: remove the cluster from one of the two stack files (or "
    "give it another name in one of them); to move it to this stack, remove it from the other stack's file and run "
    "pulumi up there first. It carries the other stack's label"
)


def check_registration_preview(
    settings: RegistrationSettings, resources: RegistrationResources, owner_label: str, parent: pulumi.Resource
) -> pulumi.Output[bool]:
    """In a preview, fail where `pulumi up` would: an object of ``resources`` about to be created exists already
    (with ``adopt``, only a namespace that must exist is looked at: what exists is what is imported)."""
    remote = [_namespace_object(settings, resources.namespace), *_remote_objects(settings, resources)]
    management = [_cluster_object(settings, resources.cluster)]
    if settings.adopt:
        remote = [p for p in remote if p.must_exist]
        management = []
    return check_planned_objects(settings, owner_label, remote, management, parent)


def _namespace_object(settings: RegistrationSettings, namespace: pulumi.CustomResource) -> PlannedObject:
    ns = settings.remote_namespace
    return PlannedObject(
        namespace,
        f"namespace/{ns}",
        f"namespace {ns!r} exists already and this stack does not manage it. Fix: set createNamespace: false "
        "(create_remote_namespace=False) to use it as it is, or delete it."
        if settings.create_remote_namespace
        else f"namespace {ns!r} does not exist, and createNamespace is false. Fix: create it, or set "
        "createNamespace: true.",
        must_exist=not settings.create_remote_namespace,
    )


def _remote_objects(settings: RegistrationSettings, resources: RegistrationResources) -> list[PlannedObject]:
    """The CA copy, the CRDs release and the agent release on the registered cluster (and CRDs owned elsewhere)."""
    gen = settings.generation
    ns = settings.remote_namespace
    planned: list[PlannedObject] = []
    if resources.root_ca_copy is not None:
        ref = f"secret/{ns}/{gen.root_ca_secret}"
        problem = (
            f"secret {gen.root_ca_secret!r} exists already in namespace {ns!r}, {_LEFT_BY_AN_EARLIER_REGISTRATION}"
        )
        another_stack = (
            f"secret {gen.root_ca_secret!r} exists already in namespace {ns!r}, created by another stack that "
            f"registers this cluster into the same namespace: {_IN_TWO_STACKS}"
        )
        planned.append(PlannedObject(resources.root_ca_copy, ref, problem, marked=True, another_stack=another_stack))
    for helm_release, release_name in (
        (resources.crds, gen.crds_chart),
        (resources.release, settings.agent_release_name),
    ):
        if helm_release is not None and release_name is not None:
            ref = f"helm-release/{ns}/{release_name}"
            problem = (
                f"Helm release {release_name!r} exists already in namespace {ns!r}, {_LEFT_BY_AN_EARLIER_REGISTRATION}"
            )
            planned.append(PlannedObject(helm_release, ref, problem))
    if resources.crds is not None and gen.crds_chart is not None:
        planned.append(_crds_owned_elsewhere(resources.crds, gen, ns))
    return planned


def _crds_owned_elsewhere(crds: pulumi.CustomResource, gen: AgentGeneration, ns: str) -> PlannedObject:
    """A destroyed registration into another namespace leaves its CRDs (retained) owned by a release there."""
    assert gen.crds_chart is not None
    return PlannedObject(
        crds,
        f"helm-crds/{ns}/{gen.crds_chart}",
        f"the CRDs of chart {gen.crds_chart!r} exist already, installed by a Helm release "
        f"{gen.crds_chart!r} in another namespace, and Helm will not take them over into namespace "
        f"{ns!r}. Fix: register the cluster into that namespace; or, if that registration is gone (its "
        f"namespace deleted by pulumi destroy), hand the CRDs over: kubectl annotate crd <each CRD found> "
        f"meta.helm.sh/release-namespace={ns} --overwrite.",
    )


def _cluster_object(settings: RegistrationSettings, cluster: pulumi.CustomResource) -> PlannedObject:
    gen = settings.generation
    where = (
        f"{gen.cluster_kind} {settings.cluster_name!r} exists already in namespace {settings.mgmt_namespace!r} of the "
        "management cluster"
    )
    return PlannedObject(
        cluster,
        f"{gen.cluster_resource}/{settings.mgmt_namespace}/{settings.cluster_name}",
        f"{where}: the name is registered with this management plane, {_LEFT_BY_AN_EARLIER_REGISTRATION}",
        marked=True,
        another_stack=f"{where}, registered by another stack: {_IN_TWO_STACKS}",
    )


def check_planned_objects(
    settings: RegistrationSettings,
    owner_label: str,
    remote: Sequence[PlannedObject],
    management: Sequence[PlannedObject],
    parent: pulumi.Resource,
) -> pulumi.Output[bool]:
    """In a preview, fail when an object about to be created exists already; True otherwise (and outside previews).
    The look is an invoke under ``parent`` (the registration), so it uses the command provider the registration's
    other shell steps use, not the default one."""
    if not pulumi.runtime.is_dry_run():
        return pulumi.Output.from_input(True)
    checks = [
        _check(settings, settings.remote, owner_label, list(remote), parent),
        _check(settings, settings.mgmt, owner_label, list(management), parent),
    ]
    return pulumi.Output.all(*checks).apply(lambda results: all(results))


def _check(
    settings: RegistrationSettings,
    access: ClusterAccess,
    owner_label: str,
    planned: list[PlannedObject],
    parent: pulumi.Resource,
) -> pulumi.Output[bool]:
    if not planned or (access.context is None and access.kubeconfig is None):
        return pulumi.Output.from_input(True)  # only a Provider object: kubectl cannot look (insecure mode only)

    async def to_create() -> list[PlannedObject]:
        # The engine answers a preview's registration with the IDs of what the stack manages already, and an unknown
        # ID for what it is about to create (or replace).
        return [p for p in planned if not await is_known(p.resource.id)]

    def look(creating: list[PlannedObject]) -> pulumi.Output[bool] | bool:
        if not creating:
            return True
        found = run_step(
            existing_objects_step(),
            FIND_EXISTING,
            access,
            objects_environment([p.lookup for p in creating], owner_label),
            pulumi.InvokeOutputOptions(parent=parent),
        )
        return pulumi.Output.unsecret(found.stdout).apply(
            lambda out: _verdict(settings, access, owner_label, creating, out)
        )

    creating = cast("pulumi.Output[list[PlannedObject]]", pulumi.Output.from_input(to_create()))
    return creating.apply(look)


def _problem(planned: PlannedObject, detail: str | None, owner_label: str) -> str:
    """What is wrong with a found object: another stack's (it carries the owner label's key with another value), or
    a leftover (what was found, where the look says more)."""
    if planned.another_stack and detail is not None and detail.startswith(owner_label.partition("=")[0] + "="):
        return f"{planned.another_stack} {detail}."
    return planned.problem + (f" Found: {detail}." if detail is not None else "")


def _verdict(
    settings: RegistrationSettings, access: ClusterAccess, owner_label: str, creating: list[PlannedObject], stdout: str
) -> bool:
    where = f"cluster {settings.cluster_name} ({access.describe()})"
    found = parse_existing(stdout)
    if found.forbidden is not None:
        role = "workload" if access is settings.remote else "management"
        raise ForbiddenError(
            f"{where}: the preview cannot look for objects an earlier registration left: {found.forbidden}. Fix: "
            f"grant that read (the {role} role, {manifest_path(role, settings.generation)}, or for previews alone "
            f"{manifest_path('preview-' + role, settings.generation)}, {RBAC_DOCS})."
        )
    if found.unreachable is not None:
        # The provider cannot reach it either; its own preview says so. One cluster down must not fail the preview
        # of every other cluster of the stack.
        pulumi.log.warn(
            f"{where} is not reachable ({found.unreachable}); objects left there by an earlier registration cannot be "
            "looked for, so `pulumi up` may fail where this preview did not"
        )
        return True
    problems = [
        _problem(p, found.details.get(p.lookup), owner_label)
        for p in creating
        if (p.lookup in found.refs) != p.must_exist
    ]
    if problems:
        raise ConflictError(f"{where}: " + " ".join(problems))
    return True
