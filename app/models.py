"""All models, imported so that metadata is complete."""
from app.accounts.models import PhoneCode, User
from app.accounts.role_models import Organisation, OrganisationCertificate, Role, RoleCertificate
from app.core.db import Base
from app.declarations.models import Declaration, DeclarationEvent
from app.masterdata.models import Certificate, Division, Major, School
from app.plans.models import DeclarationPlan, PlanCertificate, PlanResult
from app.processes.models import (
    HumanTask,
    ProcessIncident,
    ProcessInstance,
    ProcessScenario,
    ProcessVersion,
    ServiceCall,
)
from app.sms.models import AuditEntry, SmsMessage, SmsTemplate, SmsTemplateRevision

__all__ = [
    "AuditEntry", "Base", "Certificate", "Declaration", "DeclarationEvent", "DeclarationPlan", "Division",
    "HumanTask", "Major", "Organisation", "OrganisationCertificate", "PhoneCode", "PlanCertificate", "ProcessIncident",
    "PlanResult", "ProcessInstance", "ProcessScenario", "ProcessVersion", "Role", "RoleCertificate", "School",
    "ServiceCall", "SmsMessage", "SmsTemplate", "SmsTemplateRevision", "User",
]
