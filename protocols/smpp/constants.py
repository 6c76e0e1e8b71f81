"""SMPP 3.4 wire codes: section 5.1 (header fields), 5.2 (mandatory field values).

Every enum here names known values only. Fields on PDUs are typed ``int`` so an
unknown command_status, data_coding, TON or NPI from a peer is carried through
unchanged rather than rejected (SMPP 3.4 section 5.2: unknown values are the
receiver's policy, not a decoding error).
"""

from __future__ import annotations

from enum import IntEnum, IntFlag

#: SMPP 3.3; also what a bind_resp without sc_interface_version implies (section 5.3.2.25).
INTERFACE_VERSION_33 = 0x33
INTERFACE_VERSION_34 = 0x34
#: SMPP 5.0 interface_version, accepted in binds by peers that speak it.
INTERFACE_VERSION_50 = 0x50

#: A response's command_id is the request's with this bit set (section 5.1.2).
RESPONSE_BIT = 0x80000000


class CommandId(IntEnum):
    """command_id values, SMPP 3.4 section 5.1.2.1."""

    GENERIC_NACK = 0x80000000
    BIND_RECEIVER = 0x00000001
    BIND_RECEIVER_RESP = 0x80000001
    BIND_TRANSMITTER = 0x00000002
    BIND_TRANSMITTER_RESP = 0x80000002
    QUERY_SM = 0x00000003
    QUERY_SM_RESP = 0x80000003
    SUBMIT_SM = 0x00000004
    SUBMIT_SM_RESP = 0x80000004
    DELIVER_SM = 0x00000005
    DELIVER_SM_RESP = 0x80000005
    UNBIND = 0x00000006
    UNBIND_RESP = 0x80000006
    REPLACE_SM = 0x00000007
    REPLACE_SM_RESP = 0x80000007
    CANCEL_SM = 0x00000008
    CANCEL_SM_RESP = 0x80000008
    BIND_TRANSCEIVER = 0x00000009
    BIND_TRANSCEIVER_RESP = 0x80000009
    OUTBIND = 0x0000000B
    ENQUIRE_LINK = 0x00000015
    ENQUIRE_LINK_RESP = 0x80000015
    SUBMIT_MULTI = 0x00000021
    SUBMIT_MULTI_RESP = 0x80000021
    ALERT_NOTIFICATION = 0x00000102
    DATA_SM = 0x00000103
    DATA_SM_RESP = 0x80000103


class CommandStatus(IntEnum):
    """command_status values, SMPP 3.4 section 5.1.3 (then the SMPP 5.0 additions)."""

    ESME_ROK = 0x00
    ESME_RINVMSGLEN = 0x01
    ESME_RINVCMDLEN = 0x02
    ESME_RINVCMDID = 0x03
    ESME_RINVBNDSTS = 0x04
    ESME_RALYBND = 0x05
    ESME_RINVPRTFLG = 0x06
    ESME_RINVREGDLVFLG = 0x07
    ESME_RSYSERR = 0x08
    ESME_RINVSRCADR = 0x0A
    ESME_RINVDSTADR = 0x0B
    ESME_RINVMSGID = 0x0C
    ESME_RBINDFAIL = 0x0D
    ESME_RINVPASWD = 0x0E
    ESME_RINVSYSID = 0x0F
    ESME_RCANCELFAIL = 0x11
    ESME_RREPLACEFAIL = 0x13
    ESME_RMSGQFUL = 0x14
    ESME_RINVSERTYP = 0x15
    ESME_RINVNUMDESTS = 0x33
    ESME_RINVDLNAME = 0x34
    ESME_RINVDESTFLAG = 0x40
    ESME_RINVSUBREP = 0x42
    ESME_RINVESMCLASS = 0x43
    ESME_RCNTSUBDL = 0x44
    ESME_RSUBMITFAIL = 0x45
    ESME_RINVSRCTON = 0x48
    ESME_RINVSRCNPI = 0x49
    ESME_RINVDSTTON = 0x50
    ESME_RINVDSTNPI = 0x51
    ESME_RINVSYSTYP = 0x53
    ESME_RINVREPFLAG = 0x54
    ESME_RINVNUMMSGS = 0x55
    ESME_RTHROTTLED = 0x58
    ESME_RINVSCHED = 0x61
    ESME_RINVEXPIRY = 0x62
    ESME_RINVDFTMSGID = 0x63
    ESME_RX_T_APPN = 0x64
    ESME_RX_P_APPN = 0x65
    ESME_RX_R_APPN = 0x66
    ESME_RQUERYFAIL = 0x67
    ESME_RINVOPTPARSTREAM = 0xC0
    ESME_ROPTPARNOTALLWD = 0xC1
    ESME_RINVPARLEN = 0xC2
    ESME_RMISSINGOPTPARAM = 0xC3
    ESME_RINVOPTPARAMVAL = 0xC4
    ESME_RDELIVERYFAILURE = 0xFE
    ESME_RUNKNOWNERR = 0xFF
    # SMPP 5.0 additions (section 4.7.6 of 5.0); not part of 3.4.
    ESME_RSERTYPUNAUTH = 0x100
    ESME_RPROHIBITED = 0x101
    ESME_RSERTYPUNAVAIL = 0x102
    ESME_RSERTYPDENIED = 0x103
    ESME_RINVDCS = 0x104
    ESME_RINVSRCADDRSUBUNIT = 0x105
    ESME_RINVDSTADDRSUBUNIT = 0x106


class DataCoding(IntEnum):
    """data_coding values, SMPP 3.4 section 5.2.19 (0xF0..0xFF: GSM 03.38 class coding)."""

    SMSC_DEFAULT = 0x00
    IA5 = 0x01
    OCTET_UNSPECIFIED = 0x02
    LATIN_1 = 0x03
    OCTET_UNSPECIFIED_2 = 0x04
    JIS = 0x05
    CYRILLIC = 0x06
    LATIN_HEBREW = 0x07
    UCS2 = 0x08
    PICTOGRAM = 0x09
    ISO_2022_JP = 0x0A
    EXTENDED_KANJI = 0x0D
    KS_C_5601 = 0x0E
    GSM_FLASH = 0xF0


class Ton(IntEnum):
    """Type of Number, SMPP 3.4 section 5.2.5."""

    UNKNOWN = 0x00
    INTERNATIONAL = 0x01
    NATIONAL = 0x02
    NETWORK_SPECIFIC = 0x03
    SUBSCRIBER_NUMBER = 0x04
    ALPHANUMERIC = 0x05
    ABBREVIATED = 0x06


class Npi(IntEnum):
    """Numbering Plan Indicator, SMPP 3.4 section 5.2.6."""

    UNKNOWN = 0x00
    ISDN = 0x01
    DATA = 0x03
    TELEX = 0x04
    LAND_MOBILE = 0x06
    NATIONAL = 0x08
    PRIVATE = 0x09
    ERMES = 0x0A
    INTERNET = 0x0E
    WAP_CLIENT_ID = 0x12


class MessageState(IntEnum):
    """message_state values, SMPP 3.4 section 5.2.28 (SKIPPED is SMPP 5.0)."""

    ENROUTE = 1
    DELIVERED = 2
    EXPIRED = 3
    DELETED = 4
    UNDELIVERABLE = 5
    ACCEPTED = 6
    UNKNOWN = 7
    REJECTED = 8
    SKIPPED = 9


class DestFlag(IntEnum):
    """dest_flag of a submit_multi dest_address, SMPP 3.4 section 4.5.1.1."""

    SME_ADDRESS = 1
    DISTRIBUTION_LIST = 2


class EsmClass(IntFlag):
    """esm_class bits, SMPP 3.4 section 5.2.12.

    Bits 1-0 are the messaging mode, bits 5-2 the message type (values, not
    independent flags, so compare ``esm_class & MESSAGE_TYPE_MASK``), bits 7-6
    the GSM network features.
    """

    MODE_DEFAULT = 0x00
    MODE_DATAGRAM = 0x01
    MODE_FORWARD = 0x02
    MODE_STORE_AND_FORWARD = 0x03
    MODE_MASK = 0x03
    TYPE_DEFAULT = 0x00
    TYPE_DELIVERY_RECEIPT = 0x04
    TYPE_DELIVERY_ACK = 0x08
    TYPE_MANUAL_USER_ACK = 0x10
    TYPE_CONVERSATION_ABORT = 0x18
    TYPE_INTERMEDIATE_NOTIFICATION = 0x20
    MESSAGE_TYPE_MASK = 0x3C
    UDHI = 0x40
    REPLY_PATH = 0x80


class RegisteredDelivery(IntFlag):
    """registered_delivery bits, SMPP 3.4 section 5.2.17.

    Bits 1-0 select the SMSC delivery receipt (a value: 0 none, 1 on success or
    failure, 2 on failure, 3 on success in SMPP 5.0), bits 3-2 SME acks, bit 4
    intermediate notification.
    """

    NO_RECEIPT = 0x00
    RECEIPT_FINAL = 0x01
    RECEIPT_FAILURE = 0x02
    RECEIPT_SUCCESS = 0x03
    RECEIPT_MASK = 0x03
    SME_DELIVERY_ACK = 0x04
    SME_MANUAL_ACK = 0x08
    SME_ACK_MASK = 0x0C
    INTERMEDIATE_NOTIFICATION = 0x10
