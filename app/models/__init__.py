"""All models, imported so that metadata is complete."""
from app.models.base import Base
from app.models.declaration import Declaration, DeclarationEvent
from app.models.masterdata import Certificate, Division, Major, School
from app.models.plan import DeclarationPlan, PlanCertificate, PlanResult
from app.models.process import HumanTask, ProcessIncident, ProcessInstance, ProcessVersion, ServiceCall
from app.models.role import Role
from app.models.sms import AuditEntry, SmsMessage
from app.models.user import User

__all__ = [
    "AuditEntry", "Base", "Certificate", "Declaration", "DeclarationEvent", "DeclarationPlan", "Division",
    "HumanTask", "Major", "PlanCertificate", "ProcessIncident", "PlanResult", "ProcessInstance", "ProcessVersion", "Role", "School", "ServiceCall",
    "SmsMessage", "User",
]
