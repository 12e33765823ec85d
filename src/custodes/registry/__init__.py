"""The Unified Agentic Registry: operators, agents, models, keys, principals, orders."""

from custodes.registry.authority import decide
from custodes.registry.models import (
    AgentRecord,
    AgentRegister,
    AgentRotateKey,
    AgentUpdate,
    KillOrder,
    ModelRecord,
    ModelRegister,
    ModelRetire,
    ModelUpdate,
    OperatorRecord,
    OperatorRegister,
    OperatorUpdate,
    PrincipalRecord,
)
from custodes.registry.principals import Principal, TokenStore
from custodes.registry.queries import AgentFilter, RegistryQueries
from custodes.registry.rebuild import RebuildReport, rebuild
from custodes.registry.service import ORDER_TYPE, PRINCIPAL_TYPE, REGISTRY_TYPE, RegistryService

__all__ = [
    "ORDER_TYPE",
    "PRINCIPAL_TYPE",
    "REGISTRY_TYPE",
    "AgentFilter",
    "AgentRecord",
    "AgentRegister",
    "AgentRotateKey",
    "AgentUpdate",
    "KillOrder",
    "ModelRecord",
    "ModelRegister",
    "ModelRetire",
    "ModelUpdate",
    "OperatorRecord",
    "OperatorRegister",
    "OperatorUpdate",
    "Principal",
    "PrincipalRecord",
    "RebuildReport",
    "RegistryQueries",
    "RegistryService",
    "TokenStore",
    "decide",
    "rebuild",
]
