"""Code shared by the replicator and the service-router.

The two controllers are separate processes coupled only by the annotation contract in
:mod:`controller_common.contract`; everything else here is infrastructure (Kubernetes access,
informers, the work queue, the process shell) that both need and neither should write twice.
"""
