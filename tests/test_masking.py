"""Personal data never reaches logs or agent views unmasked."""

import logging

import pytest

from core.masking import PiiMaskingFilter, mask_id_number, mask_name, mask_phone, mask_text


@pytest.mark.parametrize(("name", "masked"), [("张伟", "张**"), ("欧阳娜娜", "欧阳**"), (" 李秀英 ", "李**")])
def test_names_keep_only_the_surname(name, masked):
    assert mask_name(name) == masked


def test_phone_and_id_numbers_are_masked():
    assert mask_phone("13812345678") == "138****5678"
    assert mask_phone("+86 138 1234 5678") == "138****5678"
    assert mask_id_number("110101199003074512") == "1101**********4512"


def test_free_text_is_masked_but_ordinary_numbers_stay():
    text = "客户13812345678，身份证11010119900307451X，额度50000元，热线95580"
    masked = mask_text(text)
    assert "13812345678" not in masked and "11010119900307451X" not in masked
    assert "138****5678" in masked and "50000" in masked and "95580" in masked


def test_log_records_are_masked_before_any_handler_sees_them(caplog):
    logger = logging.getLogger("offercall.test.masking")
    logger.addFilter(PiiMaskingFilter())
    with caplog.at_level(logging.INFO, logger=logger.name):
        logger.info("calling %s for customer %s", "13812345678", "C0001")
    assert "13812345678" not in caplog.text and "138****5678" in caplog.text
