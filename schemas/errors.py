"""The one exception root of the contracts package."""


class ContractError(Exception):
    """A schema, topic or serialised record broke the published contract."""


class SchemaNotFoundError(ContractError):
    """No schema of that full name (or registry id) is known."""


class IncompatibleSchemaError(ContractError):
    """The registry refused a schema because it breaks its subject's compatibility rule."""


class RegistryUnavailableError(ContractError):
    """The schema registry could not be reached or answered with a server error."""


class DeserializationError(ContractError):
    """Bytes that are not a valid Confluent-framed Avro record of a known schema."""
