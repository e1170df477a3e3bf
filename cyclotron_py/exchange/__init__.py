"""The git exchange: machines that cannot reach each other share manifests and status through
one git repository (``cyclotron exchange publish|fetch``, ``cyclotron pull``).

- ``git``: git with argv lists, hooks and fsmonitor off, no prompts.
- ``repo``: the clone under the state dir, reading the repository as untrusted input, pushing
  with rebase and exponential backoff (tenacity), never force.
- ``guard``: no secret value is ever committed.
- ``status``: status.json / STATUS.md per host and CLUSTER_STATUS.md.
- ``publish``: publish and fetch; ``pull``: one self-managing cycle.
- ``config``: the ``exchange_git`` settings of config.yml.
"""
