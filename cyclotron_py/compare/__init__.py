"""N-way comparison of capability manifests: gaps, version drift and what each host should receive.

``capability_matrix(manifests)`` is the engine; ``capability_gaps(a, b)`` is its two-host
view in the shape of the original design (Task 2.1); ``distribution_plan(matrix)`` gives the
recommendations per host for ``cyclotron_py.plan``. All results are plain JSON-ready data,
a pure function of the input: hosts, ids and lists are sorted, and the timestamp is that of
the newest manifest compared, so the CLI and the Ansible filter produce identical output.

How a capability travels (only ids that are top-level on some host are distributed):

- a catalog id goes to a host when the catalog names a package for one of the host's
  managers that runs on its OS (winget/choco: Windows; apt/rpm: Linux; brew: macOS/Linux),
  preferring the source's own manager for pip/pipx/npm, else the OS order below;
- ``pip:``/``npm:``/``winget:``... ids go only to hosts with that manager;
- ``mcp:`` servers go where their launcher's package can be installed (npx: npm; uvx/pipx:
  pip or pipx); remote (http/sse) servers go anywhere; the source's config details travel along;
- ``api_key:`` names always travel (values come from the vault at install time);
- ``git:`` repos go to hosts with git;
- ``command:`` and ``registry:`` entries have no package and are reported as unportable.

Versions: a host is *outdated* when a host with the same manager has a newer version and
both parse; the engine never recommends a downgrade unless the host's policy pins it.
The hot path works on plain attributes and dicts, never on pydantic validation.
"""

from __future__ import annotations

from .documents import (
    GAP_CATEGORIES,
    MATRIX_SCHEMA_VERSION,
    PRIORITIES,
    CapabilityRow,
    ComparisonDocument,
    DriftEntry,
    GapItem,
    GapsDocument,
    MatrixDocument,
    Recommendation,
    comparison_json_schema,
)
from .layout import dump_utf8, dumps, dumps_utf8
from .portability import MANAGER_PREFERENCE, UPGRADE_MANAGERS
from .records import CapRow, HostRecord, host_record
from .views import (
    apply_recommendations,
    capability_gaps,
    capability_matrix,
    distribution_plan,
    gaps_from_matrix,
    gc_paused,
    recommendations_for,
    resolve_policies,
    unportable_by_host,
)

__all__ = [
    "GAP_CATEGORIES",
    "MANAGER_PREFERENCE",
    "MATRIX_SCHEMA_VERSION",
    "PRIORITIES",
    "UPGRADE_MANAGERS",
    "CapRow",
    "CapabilityRow",
    "ComparisonDocument",
    "DriftEntry",
    "GapItem",
    "GapsDocument",
    "HostRecord",
    "MatrixDocument",
    "Recommendation",
    "apply_recommendations",
    "capability_gaps",
    "capability_matrix",
    "comparison_json_schema",
    "distribution_plan",
    "dump_utf8",
    "dumps",
    "dumps_utf8",
    "gaps_from_matrix",
    "gc_paused",
    "host_record",
    "recommendations_for",
    "resolve_policies",
    "unportable_by_host",
]
