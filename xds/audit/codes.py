"""Coded values of audit messages: DICOM PS3.16 CID 400-405 (code system "DCM"), RFC 3881 object id
types, IHE transaction codes (ITI TF-2 / RAD TF-3 "Audit Record Considerations" of each transaction)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Coded:
    """PS3.15 A.5.1 CodedValueType: ``csd-code``, ``codeSystemName``, ``originalText``."""

    code: str
    system: str
    text: str


def dcm(code: str, text: str) -> Coded:
    return Coded(code, "DCM", text)


def ihe(transaction: str, text: str) -> Coded:
    return Coded(transaction, "IHE Transactions", text)


# Event ID (CID 400)
APPLICATION_ACTIVITY = dcm("110100", "Application Activity")
DICOM_INSTANCES_TRANSFERRED = dcm("110104", "DICOM Instances Transferred")
EXPORT = dcm("110106", "Export")
IMPORT = dcm("110107", "Import")
PATIENT_RECORD = dcm("110110", "Patient Record")
QUERY = dcm("110112", "Query")
SECURITY_ALERT = dcm("110113", "Security Alert")
USER_AUTHENTICATION = dcm("110114", "User Authentication")

# Event Type Code (CID 401)
APPLICATION_START = dcm("110120", "Application Start")
APPLICATION_STOP = dcm("110121", "Application Stop")
LOGIN = dcm("110122", "Login")
LOGOUT = dcm("110123", "Logout")
NODE_AUTHENTICATION = dcm("110126", "Node Authentication")
USE_OF_RESTRICTED_FUNCTION = dcm("110132", "Use of a restricted function")

# Active participant Role ID (CID 402)
APPLICATION = dcm("110150", "Application")
APPLICATION_LAUNCHER = dcm("110151", "Application Launcher")
DESTINATION = dcm("110152", "Destination Role ID")
SOURCE = dcm("110153", "Source Role ID")

# Participant object ID type codes
PATIENT_NUMBER = Coded("2", "RFC-3881", "Patient Number")
REPORT_NUMBER = Coded("9", "RFC-3881", "Report Number")
URI = Coded("12", "RFC-3881", "URI")
STUDY_INSTANCE_UID = dcm("110180", "Study Instance UID")
SUBMISSION_SET = Coded("urn:uuid:a54d6aa5-d40d-43f9-88c5-b4633d873bdd", "IHE XDS Metadata",
                       "submission set classificationNode")

# Event action codes and outcome indicators (PS3.15 A.5.1)
CREATE, READ, UPDATE, DELETE, EXECUTE = "C", "R", "U", "D", "E"
SUCCESS, MINOR_FAILURE, SERIOUS_FAILURE, MAJOR_FAILURE = 0, 4, 8, 12

# Participant object type code / role (RFC 3881 5.5)
PERSON, SYSTEM_OBJECT = "1", "2"
ROLE_PATIENT, ROLE_REPORT, ROLE_SECURITY_RESOURCE, ROLE_JOB, ROLE_QUERY = "1", "3", "13", "20", "24"
