"""Local event-source-mapping runtime: AWS Lambda's stream polling semantics, in process."""

from lake.local.runtime.invoke import LambdaContext
from lake.local.runtime.runtime import EventSourceMapping, LocalRuntime, MappingStats

__all__ = ["EventSourceMapping", "LambdaContext", "LocalRuntime", "MappingStats"]
