"""The vault: health records (PHI) encrypted at rest on the custodian's node.

PHI never goes on the chain (ARCHITECTURE.md, Storage). A record's bytes
stay in the vault of the organisation that holds it; the chain carries only
its salted fingerprint. Each record has its own AES-256-GCM data key, wrapped
(together with the fingerprint's salt) by its organisation's key-encryption
key; erasing a record (GDPR Art. 17) destroys the wrapped key, so neither the
ciphertext left anywhere nor the on-chain fingerprint reveals anything.

The write path: ``put`` (or ``put_many`` for records that arrive together)
stores a record as pending and returns its entry with the fingerprint for
the transaction; when the transaction is in a block the node calls
``commit`` (or ``commit_many`` for a block's records); if it is rejected,
``discard``. ``pending_older_than`` finds records whose transaction never
came back.

Callers may rely on:

* every write (``put``, ``put_many``, ``commit``, ``commit_many``,
  ``discard``, ``erase``) is fsynced before it returns, so it survives
  kill -9 and power loss; concurrent writes from several threads share one
  fsync;
* ``open`` returns only data that authenticates under its organisation's key
  and hashes to the stored fingerprint; anything else raises
  ``VaultTampered`` (a node failure, never shown as bad input);
* an erased record answers ``RecordErased`` (a ``NotFound``) forever after,
  and its entry stays with ``erased=True``;
* a ``Vault`` may be shared by threads; the KEK files are 0600, one per
  organisation, in ``<vault>/keys``.
"""

from carechain.vault.records import (
    MAX_RECORD_SIZE,
    RECORD_ID,
    RECORD_ID_RULE,
    SALT_SIZE,
    NewRecord,
    OpenedRecord,
    VaultEntry,
    fingerprint,
    new_record_id,
    new_salt,
)
from carechain.vault.store import Vault

__all__ = [
    "MAX_RECORD_SIZE",
    "RECORD_ID",
    "RECORD_ID_RULE",
    "SALT_SIZE",
    "NewRecord",
    "OpenedRecord",
    "Vault",
    "VaultEntry",
    "fingerprint",
    "new_record_id",
    "new_salt",
]
