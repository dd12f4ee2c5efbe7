from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DENY_REASON_ESCROW: DenyReason
DENY_REASON_TOKENS: DenyReason
DENY_REASON_UNSPECIFIED: DenyReason
DESCRIPTOR: _descriptor.FileDescriptor

class BucketRequest(_message.Message):
    __slots__ = ["cost", "key", "limit", "policy"]
    COST_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    cost: int
    key: str
    limit: InlineLimit
    policy: str
    def __init__(self, policy: _Optional[str] = ..., key: _Optional[str] = ..., cost: _Optional[int] = ..., limit: _Optional[_Union[InlineLimit, _Mapping]] = ...) -> None: ...

class BucketStatus(_message.Message):
    __slots__ = ["capacity", "deny_reason", "held_tokens", "refill_period_ms", "refill_tokens", "remaining", "replicas", "reset_after_us", "retry_after_us"]
    CAPACITY_FIELD_NUMBER: _ClassVar[int]
    DENY_REASON_FIELD_NUMBER: _ClassVar[int]
    HELD_TOKENS_FIELD_NUMBER: _ClassVar[int]
    REFILL_PERIOD_MS_FIELD_NUMBER: _ClassVar[int]
    REFILL_TOKENS_FIELD_NUMBER: _ClassVar[int]
    REMAINING_FIELD_NUMBER: _ClassVar[int]
    REPLICAS_FIELD_NUMBER: _ClassVar[int]
    RESET_AFTER_US_FIELD_NUMBER: _ClassVar[int]
    RETRY_AFTER_US_FIELD_NUMBER: _ClassVar[int]
    capacity: int
    deny_reason: DenyReason
    held_tokens: int
    refill_period_ms: int
    refill_tokens: int
    remaining: int
    replicas: _containers.RepeatedCompositeFieldContainer[ReplicaShare]
    reset_after_us: int
    retry_after_us: int
    def __init__(self, remaining: _Optional[int] = ..., retry_after_us: _Optional[int] = ..., reset_after_us: _Optional[int] = ..., capacity: _Optional[int] = ..., refill_tokens: _Optional[int] = ..., refill_period_ms: _Optional[int] = ..., replicas: _Optional[_Iterable[_Union[ReplicaShare, _Mapping]]] = ..., deny_reason: _Optional[_Union[DenyReason, str]] = ..., held_tokens: _Optional[int] = ...) -> None: ...

class ConsumeRequest(_message.Message):
    __slots__ = ["decisions"]
    DECISIONS_FIELD_NUMBER: _ClassVar[int]
    decisions: _containers.RepeatedCompositeFieldContainer[Decision]
    def __init__(self, decisions: _Optional[_Iterable[_Union[Decision, _Mapping]]] = ...) -> None: ...

class ConsumeResponse(_message.Message):
    __slots__ = ["results"]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[DecisionResult]
    def __init__(self, results: _Optional[_Iterable[_Union[DecisionResult, _Mapping]]] = ...) -> None: ...

class Decision(_message.Message):
    __slots__ = ["buckets"]
    BUCKETS_FIELD_NUMBER: _ClassVar[int]
    buckets: _containers.RepeatedCompositeFieldContainer[BucketRequest]
    def __init__(self, buckets: _Optional[_Iterable[_Union[BucketRequest, _Mapping]]] = ...) -> None: ...

class DecisionResult(_message.Message):
    __slots__ = ["allowed", "buckets", "retry_after_us"]
    ALLOWED_FIELD_NUMBER: _ClassVar[int]
    BUCKETS_FIELD_NUMBER: _ClassVar[int]
    RETRY_AFTER_US_FIELD_NUMBER: _ClassVar[int]
    allowed: bool
    buckets: _containers.RepeatedCompositeFieldContainer[BucketStatus]
    retry_after_us: int
    def __init__(self, allowed: bool = ..., retry_after_us: _Optional[int] = ..., buckets: _Optional[_Iterable[_Union[BucketStatus, _Mapping]]] = ...) -> None: ...

class InlineLimit(_message.Message):
    __slots__ = ["capacity", "refill_period_ms", "refill_tokens"]
    CAPACITY_FIELD_NUMBER: _ClassVar[int]
    REFILL_PERIOD_MS_FIELD_NUMBER: _ClassVar[int]
    REFILL_TOKENS_FIELD_NUMBER: _ClassVar[int]
    capacity: int
    refill_period_ms: int
    refill_tokens: int
    def __init__(self, capacity: _Optional[int] = ..., refill_tokens: _Optional[int] = ..., refill_period_ms: _Optional[int] = ...) -> None: ...

class QueryRequest(_message.Message):
    __slots__ = ["decisions", "include_replicas"]
    DECISIONS_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_REPLICAS_FIELD_NUMBER: _ClassVar[int]
    decisions: _containers.RepeatedCompositeFieldContainer[Decision]
    include_replicas: bool
    def __init__(self, decisions: _Optional[_Iterable[_Union[Decision, _Mapping]]] = ..., include_replicas: bool = ...) -> None: ...

class QueryResponse(_message.Message):
    __slots__ = ["results"]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[DecisionResult]
    def __init__(self, results: _Optional[_Iterable[_Union[DecisionResult, _Mapping]]] = ...) -> None: ...

class ReplicaShare(_message.Message):
    __slots__ = ["consumed", "incarnation", "lag_us", "local", "node", "retired"]
    CONSUMED_FIELD_NUMBER: _ClassVar[int]
    INCARNATION_FIELD_NUMBER: _ClassVar[int]
    LAG_US_FIELD_NUMBER: _ClassVar[int]
    LOCAL_FIELD_NUMBER: _ClassVar[int]
    NODE_FIELD_NUMBER: _ClassVar[int]
    RETIRED_FIELD_NUMBER: _ClassVar[int]
    consumed: int
    incarnation: str
    lag_us: int
    local: bool
    node: str
    retired: bool
    def __init__(self, node: _Optional[str] = ..., incarnation: _Optional[str] = ..., consumed: _Optional[int] = ..., lag_us: _Optional[int] = ..., retired: bool = ..., local: bool = ...) -> None: ...

class DenyReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []
