"""Local event-source-mapping runtime: AWS Lambda's stream polling semantics, in process."""

from lake.invocation import LambdaContext
from lake.local.runtime.mapping import EventSourceMapping, MappingStats
from lake.local.runtime.runtime import LocalRuntime

__all__ = ["EventSourceMapping", "LambdaContext", "LocalRuntime", "MappingStats"]
