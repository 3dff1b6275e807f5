"""schemas.offsets: which broker answers are waited out, and for how long."""

from __future__ import annotations

import threading
import time

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from schemas.offsets import watermarks


class Scripted:
    """Answers get_watermark_offsets from a script: an exception to raise or offsets to give."""

    def __init__(self, *answers: KafkaError | tuple[int, int]) -> None:
        self.answers = list(answers)
        self.asked = 0

    def get_watermark_offsets(self, partition: TopicPartition, timeout: float) -> tuple[int, int]:
        self.asked += 1
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, KafkaError):
            raise KafkaException(answer)
        return answer


TP = TopicPartition("t", 0)


@pytest.mark.parametrize(
    "code",
    [
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
        KafkaError._TRANSPORT,
    ],
)
def test_a_leader_election_is_waited_out(code: int) -> None:
    consumer = Scripted(KafkaError(code), KafkaError(code), (3, 9))
    assert watermarks(consumer, TP, timeout_s=5) == (3, 9)  # type: ignore[arg-type]
    assert consumer.asked == 3


def test_an_error_that_is_not_transient_is_raised_at_once() -> None:
    consumer = Scripted(KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED), (0, 1))
    with pytest.raises(KafkaException) as caught:
        watermarks(consumer, TP, timeout_s=5)  # type: ignore[arg-type]
    assert caught.value.args[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    assert consumer.asked == 1


def test_a_transient_answer_that_outlasts_the_wait_is_raised() -> None:
    consumer = Scripted(KafkaError(KafkaError.NOT_LEADER_FOR_PARTITION))
    began = time.monotonic()
    with pytest.raises(KafkaException):
        watermarks(consumer, TP, timeout_s=0.5)  # type: ignore[arg-type]
    assert time.monotonic() - began < 2.0
    assert 2 <= consumer.asked <= 5  # backs off: 0.1 s, 0.2 s, ... not a busy loop


def test_a_stop_ends_the_wait() -> None:
    consumer = Scripted(KafkaError(KafkaError.NOT_LEADER_FOR_PARTITION))
    stop = threading.Event()
    stop.set()
    with pytest.raises(KafkaException):
        watermarks(consumer, TP, timeout_s=30, stop=stop)  # type: ignore[arg-type]
    assert consumer.asked == 1
