"""Pure data from the OCI specifications: media types, digests, descriptors.

Nothing here touches the filesystem beyond hashing a given file, nor imports other sampan layers.
"""
