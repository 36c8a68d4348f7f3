/* test_processor.c - unit tests for server/processor's retry schedule (the part of the
 * processor that needs neither Python nor a running server). */
#include "server/processor.h"
#include "test.h"

TEST(processor_retry_delay_doubles)
{
    ASSERT_TRUE(pt_processor_retry_delay(1, 1) == 1);
    ASSERT_TRUE(pt_processor_retry_delay(1, 2) == 2);
    ASSERT_TRUE(pt_processor_retry_delay(1, 3) == 4);
    ASSERT_TRUE(pt_processor_retry_delay(1, 5) == 16);
    ASSERT_TRUE(pt_processor_retry_delay(0.5, 4) == 4);
    /* attempts below 1 (never claimed) wait the base delay. */
    ASSERT_TRUE(pt_processor_retry_delay(1, 0) == 1);
    ASSERT_TRUE(pt_processor_retry_delay(0, 10) == 0);
}

TEST(processor_retry_delay_stops_doubling_past_an_hour)
{
    /* 1, 2, ..., 2048, 4096: the first delay of an hour or more, then it stays. */
    ASSERT_TRUE(pt_processor_retry_delay(1, 13) == 4096);
    ASSERT_TRUE(pt_processor_retry_delay(1, 14) == 4096);
    ASSERT_TRUE(pt_processor_retry_delay(1, 1000000) == 4096);
    ASSERT_TRUE(pt_processor_retry_delay(3600, 5) == 3600);
    ASSERT_TRUE(pt_processor_retry_delay(5000, 3) == 5000);
}
