"""A Merkle tree over chain heads (RFC 6962 shape): one root commits to every complaint's head at a log
position, and a short proof shows that one complaint's head is under that root, with no server at hand.

Leaves are sorted by complaint id. Leaf and node hashes are domain-separated (0x00 / 0x01 prefixes), so
a node can never be passed off as a leaf.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from domain.chain import canonical_json


def leaf_hash(complaint_id: str, sequence: int, head_hash: str) -> bytes:
    return hashlib.sha256(b"\x00" + canonical_json([complaint_id, sequence, head_hash])).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than n."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def root(leaves: Sequence[bytes]) -> bytes:
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = _split(len(leaves))
    return _node(root(leaves[:k]), root(leaves[k:]))


def proof(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """The sibling hashes from leaf ``index`` up to the root."""
    if len(leaves) <= 1:
        return []
    k = _split(len(leaves))
    if index < k:
        return proof(leaves[:k], index) + [root(leaves[k:])]
    return proof(leaves[k:], index - k) + [root(leaves[:k])]


def root_from_proof(leaf: bytes, index: int, size: int, path: Sequence[bytes]) -> bytes:
    """Recompute the root from a leaf and its proof (RFC 9162, 2.1.3.2); raises ValueError if malformed."""
    if not 0 <= index < size:
        raise ValueError("leaf index outside the tree")
    fn, sn, node = index, size - 1, leaf
    for sibling in path:
        if sn == 0:
            raise ValueError("proof is longer than the tree is deep")
        if fn % 2 == 1 or fn == sn:
            node = _node(sibling, node)
            while fn % 2 == 0 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            node = _node(node, sibling)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ValueError("proof is shorter than the tree is deep")
    return node
