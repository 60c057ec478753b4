"""Storage: the content store (blobs by digest) and snapshotters (layers as mounts)."""
