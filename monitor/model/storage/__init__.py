"""Durable storage of the model in an embedded SQLite file (README "History and storage")."""

from monitor.model.storage.durable import DurableStore, StorageSettings
from monitor.model.storage.schema import SCHEMA_VERSION, NewerSchemaError

__all__ = ["SCHEMA_VERSION", "DurableStore", "NewerSchemaError", "StorageSettings"]
