/* test_json.c - unit tests for core/json: Python-compatible floats, string escaping, UTF-8. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/json.h"
#include "test.h"

/* Appends with f and compares the whole buffer with want. */
#define CHECK_STRING(in, inlen, want)                                                              \
    do {                                                                                           \
        pt_buf b_;                                                                                 \
        pt_buf_init(&b_, 0);                                                                       \
        ASSERT_EQ(pt_json_string(&b_, (in), (inlen)), 0);                                          \
        ASSERT_MEMSTR(b_.data, b_.len, (want));                                                    \
        pt_buf_free(&b_);                                                                          \
    } while (0)
#define CHECK_CSTRING(in, want) CHECK_STRING(in, sizeof(in) - 1, want)

static double
from_bits(uint64_t bits)
{
    double v;
    memcpy(&v, &bits, sizeof(v));
    return v;
}

static const char *
fmt(double v, char *out)
{
    pt_json_format_double(v, out);
    return out;
}

TEST(json_double_python_examples)
{
    char o[40];
    ASSERT_STREQ(fmt(1.0, o), "1.0");
    ASSERT_STREQ(fmt(0.1, o), "0.1");
    ASSERT_STREQ(fmt(1e16, o), "1e+16");
    ASSERT_STREQ(fmt(1.5e-7, o), "1.5e-07");
    ASSERT_STREQ(fmt(123456789012345.0, o), "123456789012345.0");
    ASSERT_STREQ(fmt(1e22, o), "1e+22");
    ASSERT_STREQ(fmt(-0.0, o), "-0.0");
    ASSERT_STREQ(fmt(0.0, o), "0.0");
    ASSERT_STREQ(fmt(1e15, o), "1000000000000000.0");
    ASSERT_STREQ(fmt(9999999999999998.0, o), "9999999999999998.0");
    ASSERT_STREQ(fmt(0.0001, o), "0.0001");
    ASSERT_STREQ(fmt(0.00001, o), "1e-05");
    ASSERT_STREQ(fmt(0.1 + 0.2, o), "0.30000000000000004");
    ASSERT_STREQ(fmt(-2.5, o), "-2.5");
    ASSERT_STREQ(fmt(1e100, o), "1e+100");
    ASSERT_STREQ(fmt(1.7976931348623157e308, o), "1.7976931348623157e+308");
    ASSERT_STREQ(fmt(5e-324, o), "5e-324");
    ASSERT_STREQ(fmt(2.0 / 3.0, o), "0.6666666666666666");
    ASSERT_STREQ(fmt(9007199254740992.0, o), "9007199254740992.0");
    ASSERT_STREQ(fmt(1e23, o), "1e+23");
}

TEST(json_double_repr_specials)
{
    char o[40];
    ASSERT_STREQ(fmt(NAN, o), "nan");
    ASSERT_STREQ(fmt(INFINITY, o), "inf");
    ASSERT_STREQ(fmt(-INFINITY, o), "-inf");
    ASSERT_EQ(pt_json_format_double(-1.5e-7, o), 8);
}

/* The fast path for short decimals (prices, amounts) must print what repr() prints, at the
 * edges of its range too. Expected strings are Python 3.11's repr. */
TEST(json_double_short_decimals)
{
    char o[40];
    ASSERT_STREQ(fmt(62501.25, o), "62501.25");
    ASSERT_STREQ(fmt(0.1, o), "0.1");
    ASSERT_STREQ(fmt(0.0001, o), "0.0001");
    ASSERT_STREQ(fmt(0.00012345678, o), "0.00012345678");
    ASSERT_STREQ(fmt(9.99e-05, o), "9.99e-05");
    ASSERT_STREQ(fmt(-1234.5, o), "-1234.5");
    ASSERT_STREQ(fmt(0.30000000000000004, o), "0.30000000000000004");
    ASSERT_STREQ(fmt(123456789.12345678, o), "123456789.12345678");
    ASSERT_STREQ(fmt(999999999999999.9, o), "999999999999999.9");
    ASSERT_STREQ(fmt(1e15 + 0.5, o), "1000000000000000.5");
    ASSERT_STREQ(fmt(0.07, o), "0.07");
}

TEST(json_double_nonfinite_as_python_json)
{
    pt_buf b;
    pt_buf_init(&b, 0);
    ASSERT_EQ(pt_json_double(&b, NAN), 0);
    ASSERT_EQ(pt_buf_putc(&b, ','), 0);
    ASSERT_EQ(pt_json_double(&b, INFINITY), 0);
    ASSERT_EQ(pt_buf_putc(&b, ','), 0);
    ASSERT_EQ(pt_json_double(&b, -INFINITY), 0);
    ASSERT_EQ(pt_buf_putc(&b, ','), 0);
    ASSERT_EQ(pt_json_double(&b, 1e16), 0);
    ASSERT_STREQ(b.data, "NaN,Infinity,-Infinity,1e+16");
    pt_buf_free(&b);
}

/* Expected strings are repr() of the same doubles, computed by CPython 3.11. */
static const struct {
    uint64_t bits;
    const char *repr;
} double_table[] = {
    {0x3ff0000000000000ULL, "1.0"},
    {0x3fb999999999999aULL, "0.1"},
    {0x4341c37937e08000ULL, "1e+16"},
    {0x3e8421f5f40d8376ULL, "1.5e-07"},
    {0x42dc12218377de40ULL, "123456789012345.0"},
    {0x4480f0cf064dd592ULL, "1e+22"},
    {0x8000000000000000ULL, "-0.0"},
    {0x0000000000000000ULL, "0.0"},
    {0xbff0000000000000ULL, "-1.0"},
    {0x3fe0000000000000ULL, "0.5"},
    {0x3fd3333333333333ULL, "0.3"},
    {0x3fe5555555555555ULL, "0.6666666666666666"},
    {0x3fd5555555555555ULL, "0.3333333333333333"},
    {0x4059000000000000ULL, "100.0"},
    {0x430c6bf526340000ULL, "1000000000000000.0"},
    {0x3f1a36e2eb1c432dULL, "0.0001"},
    {0x3ee4f8b588e368f1ULL, "1e-05"},
    {0x3f202c9dedbc309dULL, "0.0001234"},
    {0x4341c37937e07fffULL, "9999999999999998.0"},
    {0x43118b54f22aeb00ULL, "1234567890123456.0"},
    {0x4345ee2a2eb5a5c4ULL, "1.2345678901234568e+16"},
    {0x4376345785d8a000ULL, "1e+17"},
    {0x7fefffffffffffffULL, "1.7976931348623157e+308"},
    {0x0000000000000001ULL, "5e-324"},
    {0x0000000000000002ULL, "1e-323"},
    {0x0010000000000000ULL, "2.2250738585072014e-308"},
    {0x000fffffffffffffULL, "2.225073858507201e-308"},
    {0x44b52d02c7e14af6ULL, "1e+23"},
    {0x4340000000000000ULL, "9007199254740992.0"},
    {0x4340000000000001ULL, "9007199254740994.0"},
    {0x4011666666666666ULL, "4.35"},
    {0x3fd3333333333334ULL, "0.30000000000000004"},
    {0x400921fb54442d18ULL, "3.141592653589793"},
    {0x4005bf0a8b145769ULL, "2.718281828459045"},
    {0x54b249ad2594c37dULL, "1e+100"},
    {0x7e41eb2d66005835ULL, "1.5e+300"},
    {0x01a56e1fc2f8f359ULL, "1e-300"},
    {0xbe7ad7f29abcaf48ULL, "-1e-07"},
    {0x405edd2f1a9fbe77ULL, "123.456"},
    {0x444b1ae4d6e2ef50ULL, "1e+21"},
    {0x3ddb7cdfd9d7bdbbULL, "1e-10"},
    {0x3f201f31f46ed246ULL, "0.000123"},
    {0x3f0a36e2eb1c432dULL, "5e-05"},
    {0x0000000000000003ULL, "1.5e-323"},
    {0x43e0000000000000ULL, "9.223372036854776e+18"},
    {0x43f0000000000000ULL, "1.8446744073709552e+19"},
    {0xc630000000000000ULL, "-1.2676506002282294e+30"},
    {0x447c7e83209e90b2ULL, "8.41e+21"},
    {0x3ff4000000000000ULL, "1.25"},
    {0x403dfd70a3d70a3dULL, "29.99"},
    {0x4033f33333333333ULL, "19.95"},
    {0x3fb1eb851eb851ecULL, "0.07"},
    {0x3ff199999999999aULL, "1.1"},
    {0x4005666666666666ULL, "2.675"},
    {0x7e6ddd4baa009303ULL, "1e+301"},
    {0x0010000000000001ULL, "2.225073858507202e-308"},
    {0x0020000000000000ULL, "4.450147717014403e-308"},
    {0x001fffffffffffffULL, "4.4501477170144023e-308"},
    {0x0020000000000001ULL, "4.450147717014404e-308"},
    {0x1a70000000000000ULL, "2.409919865102884e-181"},
    {0x1a6fffffffffffffULL, "2.4099198651028839e-181"},
    {0x1a70000000000001ULL, "2.4099198651028847e-181"},
    {0x39b0000000000000ULL, "7.888609052210118e-31"},
    {0x39afffffffffffffULL, "7.888609052210117e-31"},
    {0x39b0000000000001ULL, "7.88860905221012e-31"},
    {0x3ca0000000000000ULL, "1.1102230246251565e-16"},
    {0x3c9fffffffffffffULL, "1.1102230246251564e-16"},
    {0x3ca0000000000001ULL, "1.1102230246251568e-16"},
    {0x3fdfffffffffffffULL, "0.49999999999999994"},
    {0x3fe0000000000001ULL, "0.5000000000000001"},
    {0x4000000000000000ULL, "2.0"},
    {0x3fffffffffffffffULL, "1.9999999999999998"},
    {0x4000000000000001ULL, "2.0000000000000004"},
    {0x4330000000000000ULL, "4503599627370496.0"},
    {0x432fffffffffffffULL, "4503599627370495.5"},
    {0x4330000000000001ULL, "4503599627370497.0"},
    {0x433fffffffffffffULL, "9007199254740991.0"},
    {0x4350000000000000ULL, "1.8014398509481984e+16"},
    {0x434fffffffffffffULL, "1.8014398509481982e+16"},
    {0x4350000000000001ULL, "1.8014398509481988e+16"},
    {0x43b0000000000000ULL, "1.152921504606847e+18"},
    {0x43afffffffffffffULL, "1.1529215046068468e+18"},
    {0x43b0000000000001ULL, "1.1529215046068472e+18"},
    {0x4630000000000000ULL, "1.2676506002282294e+30"},
    {0x462fffffffffffffULL, "1.2676506002282293e+30"},
    {0x4630000000000001ULL, "1.2676506002282297e+30"},
    {0x5f30000000000000ULL, "3.273390607896142e+150"},
    {0x5f2fffffffffffffULL, "3.2733906078961415e+150"},
    {0x5f30000000000001ULL, "3.2733906078961426e+150"},
    {0x7e70000000000000ULL, "1.0715086071862673e+301"},
    {0x7e6fffffffffffffULL, "1.0715086071862672e+301"},
    {0x7e70000000000001ULL, "1.0715086071862676e+301"},
    {0x7fe0000000000000ULL, "8.98846567431158e+307"},
    {0x7fdfffffffffffffULL, "8.988465674311579e+307"},
    {0x7fe0000000000001ULL, "8.988465674311582e+307"},
    {0x2e84496e7857dd86ULL, "1.3053460867029954e-84"},
    {0x940eee3cba6f875cULL, "-4.593900756363754e-212"},
    {0x33406bc44dc2a627ULL, "7.983430509249571e-62"},
    {0xb938451ee325faa6ULL, "-4.674232466673235e-33"},
    {0xc1d8fac168fb90d7ULL, "-1676346787.9307153"},
    {0xc2354e2bb7740a63ULL, "-91505801076.04057"},
    {0x887e840043e58844ULL, "-9.242004904000638e-268"},
    {0xa2da95a83ec33dd6ULL, "-8.72031439815143e-141"},
    {0xbc38d756d0055979ULL, "-1.3466424375819714e-18"},
    {0x5aab0a377f90ade7ULL, "5.857245089853537e+128"},
    {0x86ff0de26a769806ULL, "-5.6058932322064184e-275"},
    {0x9d9b532aba4e6c36ULL, "-4.633834494019838e-166"},
    {0x37d72e4af6978770ULL, "1.064411574118151e-39"},
    {0x8b3890644f3d4e7bULL, "-1.3087699255072154e-254"},
    {0x548a84a5b43d4318ULL, "1.8125578230860703e+99"},
    {0x131db61884f42b4bULL, "1.346681689596359e-216"},
    {0xc63d5f77bb3a6a06ULL, "-2.327162535179311e+30"},
    {0xddfa7fa4ffe9ec11ULL, "-5.1701251164991826e+144"},
    {0xb070e38434d57084ULL, "-2.333663540648899e-75"},
    {0xba49c19fc0a9c8beULL, "-6.501815279748911e-28"},
    {0xecb736d877f1caf0ULL, "-5.001628063009517e+215"},
    {0xd4dd79d3b5834f4cULL, "-6.447115449024754e+100"},
    {0xa70b967adf354788ULL, "-1.3354542394704874e-120"},
    {0x88177abd25fbab1bULL, "-1.1110965234027424e-269"},
    {0xde11ee00366dadc0ULL, "-1.3992996522070256e+145"},
    {0xfaaced226972f683ULL, "-8.401153636443164e+282"},
    {0xc54be01c0ef8e010ULL, "-6.7398649618900644e+25"},
    {0xa0f09780597538cbULL, "-5.06868998984818e-150"},
    {0x7744001a6aa45fe0ULL, "3.224518911819663e+266"},
    {0xb9ae5c8f1fca7da2ULL, "-7.484702137230195e-31"},
    {0x2393446abe564059ULL, "2.588700476085742e-137"},
    {0x53bdf64dc34797c4ULL, "2.499949553685165e+95"},
    {0x54b1070f63eb18aaULL, "9.310895901665851e+99"},
    {0xcb2d34ea58655852ULL, "-1.3987230868249824e+54"},
    {0x5352d63f337e6853ULL, "2.4557725950682515e+93"},
    {0x6a1510446d433715ULL, "1.031878447048137e+203"},
    {0x915405c051032369ULL, "-3.3808103698413506e-225"},
    {0xe7b0dfa436cc71a5ULL, "-3.007218575433834e+191"},
    {0x682f860ede282d59ULL, "7.191242335674431e+193"},
    {0x345986d33aa67f52ULL, "1.6266526608241936e-56"},
    {0xbffa07750a5d5bfeULL, "-1.6268206028814798"},
    {0xc30d0ea339a7ff57ULL, "-1022358566797290.9"},
    {0xf897181304f8c31cULL, "-7.808291293778871e+272"},
    {0x4245dc03dd8ba9d4ULL, "187771108119.32678"},
    {0x8171a4c3d80dad42ULL, "-1.0291339019190288e-301"},
    {0xc5bc543b51b8a7afULL, "-8.767410170959846e+27"},
    {0x91f68f88f5d93c67ULL, "-3.90081598379482e-222"},
    {0xb4852afbcdebefa7ULL, "-1.0791173696284748e-55"},
    {0x9d1a8c836bc9e141ULL, "-1.7586873779833286e-168"},
    {0x54c4c0c31cae4e65ULL, "2.2695982181941527e+100"},
    {0xa7193cf4d9f181eaULL, "-2.4434226281837867e-120"},
    {0xc7c64d559b509fbeULL, "-5.92891181510175e+37"},
    {0x3c6fc1733b08c157ULL, "1.3771824188622271e-17"},
    {0x76da03a0febdf93aULL, "3.2766214762112476e+264"},
    {0x22d7bd7f5d9f3480ULL, "7.78729923227361e-141"},
    {0x5e684f9633fddcd9ULL, "6.071397767104146e+146"},
    {0x9871d7697e4ba594ULL, "-6.256810315685157e-191"},
    {0xa0cb0b17d625c18aULL, "-1.0326957467701334e-150"},
    {0x430e07f524329a26ULL, "1056624844624708.8"},
    {0x9fa71a5963243c73ULL, "-3.3654198689206114e-156"},
    {0x55e3679f5656a72aULL, "5.56310308827219e+105"},
    {0xb56211ccf0a737c3ULL, "-1.509237848895361e-51"},
    {0xb6770b11ffc9492cULL, "-2.522692311181771e-46"},
    {0xdc79e8e87707af4dULL, "-3.013159023278787e+137"},
    {0xaf1f7fa62b790602ULL, "-1.0377024531960915e-81"},
    {0xc48ff480b2122b13ULL, "-1.8862955002187882e+22"},
    {0x21cb664adc769927ULL, "6.857029439341655e-146"},
    {0xecad86a154f1b974ULL, "-3.1807537675321595e+215"},
    {0x94bdca5e34f81895ULL, "-9.061514923858489e-209"},
    {0x10c1525aafc3434bULL, "5.712467077089321e-228"},
    {0xf0edeb0c1915ec28ULL, "-9.512647549987205e+235"},
    {0x2c7a15bed7f35cebULL, "1.9539401955470455e-94"},
    {0xe65ddc49011ae8e6ULL, "-1.2688032135518973e+185"},
    {0x7029d03d2691949cULL, "2.0037910944431919e+232"},
    {0x3c55de74b42eddd2ULL, "4.7420765793454236e-18"},
    {0x3a81ea0b59ac4f53ULL, "7.235502174222167e-27"},
    {0x3215e84814d92cf9ULL, "2.0314719225839168e-67"},
    {0x48c3fd37cd9201ffULL, "3.4825980929129125e+42"},
    {0xb1ee4a0a3d41c6dfULL, "-3.51090488895453e-68"},
    {0x9a094dea760ee1c3ULL, "-2.977611184107951e-183"},
    {0x7b675e54437cfbc7ULL, "2.779945189140641e+286"},
    {0xe129131286111badULL, "-1.1016408226190745e+160"},
    {0xa9f334346f9ed048ULL, "-1.308312670230879e-106"},
    {0x6a373282f8d5f553ULL, "4.5456367833740966e+203"},
    {0xd7bd11c533708700ULL, "-4.4741925065505884e+114"},
    {0x4d26df2f12231373ULL, "4.704458858818139e+63"},
    {0x4746df204d70bb5eULL, "2.375121349944225e+35"},
    {0x9085ab8a22c1a23aULL, "-4.466565977839332e-229"},
    {0xbb373251a95ee629ULL, "-1.9187743516462272e-23"},
    {0x86fe0f194001c9e9ULL, "-5.4262299897932524e-275"},
    {0x7ec6b10619c1ad85ULL, "4.86282737011383e+302"},
    {0xe4196f3537fbd485ULL, "-1.5726754496035033e+174"},
    {0xc8c90052320862d1ULL, "-4.3558328095491836e+42"},
    {0x2d16130c637b38b5ULL, "1.6932082969961052e-91"},
    {0xd9a4e1e983e89a8aULL, "-6.902240523351961e+123"},
    {0x51e8217b39260d7aULL, "3.750250260317813e+86"},
    {0xc0085a145ac7cd4dULL, "-3.0439841358399122"},
    {0xe4337c1db3da03ffULL, "-4.819190387492798e+174"},
    {0x0bad1375ccbe3f3eULL, "1.9829353233877937e-252"},
    {0xe6a2b38494301443ULL, "-2.542832640632858e+186"},
    {0xad92c7d6ee99c03dULL, "-3.687833414971349e-89"},
    {0x608041f78b4e09dbULL, "6.975356717015037e+156"},
    {0xbdcc489cefa65685ULL, "-5.144764992170608e-11"},
    {0xf35b15bfb8703835ULL, "-4.7343961899911476e+247"},
    {0x12c83c23a22845d1ULL, "3.4326910670132934e-218"},
    {0x3ac3aeaf1e595520ULL, "1.2719426771840465e-25"},
    {0x848a58c50e46b510ULL, "-8.651298641066806e-287"},
    {0xf1f8665c201f0631ULL, "-1.0168656673254689e+241"},
    {0x35d25ae0d45d1139ULL, "1.9623431153108372e-49"},
    {0xa28e6d2ae81b9fccULL, "-3.1189121571775664e-142"},
    {0xec7ea1c99d6d1f17ULL, "-4.1248868268171187e+214"},
    {0xf24a8cdc167edfdaULL, "-3.540746773405349e+242"},
    {0x2c7b76da810f5598ULL, "2.0572612958201146e-94"},
    {0x7cf0d5123c7b04ccULL, "6.71892036577166e+293"},
    {0xcc868b40957cd5f8ULL, "-4.528342213552716e+60"},
    {0x2a4204a6bb59e523ULL, "3.928096795080271e-105"},
    {0x1637c1d8297b2a4aULL, "1.2123785725423196e-201"},
    {0x9e274b3f2014a4c3ULL, "-2.0225309018374553e-163"},
    {0xcfb707cc1ab33b34ULL, "-1.041697212295719e+76"},
    {0x981b88f0f18f97a9ULL, "-1.5087827335864302e-192"},
    {0xcffecfa18fca024eULL, "-2.2297980572184568e+77"},
    {0x9ab53d94fe9fa6fbULL, "-5.118803478368667e-180"},
    {0x07b9b37ea1aab1ecULL, "1.9003626793673493e-271"},
    {0x1ba33a53986b28deULL, "1.518388802822282e-175"},
    {0x2e0968af8f5e5555ULL, "6.386422092637068e-87"},
    {0xb2c4d80a8b5646c9ULL, "-3.958495359425812e-64"},
    {0x001e6f135092c597ULL, "4.2323531028931227e-308"},
    {0x47ed00441f740b00ULL, "3.0839194858881765e+38"},
    {0x2ea7c9ed07674866ULL, "6.1227039562652305e-84"},
    {0x1a9289f70fbd4948ULL, "1.1169331576962352e-180"},
    {0xdb7b359ea2a639e0ULL, "-4.828340639481946e+132"},
    {0xac66f3869ff93e6dULL, "-8.596034555241308e-95"},
    {0xbbf5d7cb9eaf66e9ULL, "-7.400679577677908e-20"},
    {0x9443fa7f35cdec71ULL, "-4.747620581276608e-211"},
    {0xa5014df9353603afULL, "-1.9503522066647176e-130"},
    {0x76027c9a30aa1af2ULL, "2.842407315942793e+260"},
    {0x791515502fa80d66ULL, "1.8248774788769723e+275"},
    {0x45d01eb1504c2d68ULL, "1.9955461087304447e+28"},
    {0x7431fb7dbb8b8a85ULL, "5.149958614562747e+251"},
    {0x706a2958a2618386ULL, "3.249297246550688e+233"},
    {0xb74880cad5a9bfeeULL, "-2.197513562220996e-42"},
    {0xd2f26922ce4a3738ULL, "-3.75032324701279e+91"},
    {0x6673bc7f379fb813ULL, "3.3544663559426325e+185"},
    {0xdddfd3259619bcf3ULL, "-1.5523281115447418e+144"},
    {0xdd1cae7272e02849ULL, "-3.4155359092456324e+140"},
    {0x98297c0a6b1db777ULL, "-2.7928619908031073e-192"},
    {0x223f2f18b3f9e5c7ULL, "9.989264088933811e-144"},
    {0x35a00c05e1e406ffULL, "2.144488055474754e-50"},
    {0x4fc83d1b290e627cULL, "2.1926946981947875e+76"},
    {0x326a609865dcc592ULL, "7.82711501118762e-66"},
    {0x2deeda9dc0ac369cULL, "1.9387522638199205e-87"},
    {0x749067345b4f61e9ULL, "3.006515368327151e+253"},
    {0x03cfeceeafc6fc43ULL, "2.5593644474598065e-290"},
    {0x55d94fd11e872be2ULL, "3.628283942373741e+105"},
    {0x40e10f9666666666ULL, "34940.7"},
    {0x40e89ec4ed916873ULL, "50422.154"},
    {0x40def8c000000000ULL, "31715.0"},
    {0xc0ebe97410624dd3ULL, "-57163.627"},
    {0x40c54f16f9db22d1ULL, "10910.1795"},
    {0x40eddda333333333ULL, "61165.1"},
    {0xc0e066f19e83e426ULL, "-33591.5506"},
    {0xc0df409e147ae148ULL, "-32002.47"},
    {0x40e038899999999aULL, "33220.3"},
    {0xc0ead88000000000ULL, "-54980.0"},
    {0x40efe2ed47ae147bULL, "65303.415"},
    {0xc0f51e199999999aULL, "-86497.6"},
    {0xc0efbe275c28f5c3ULL, "-65009.23"},
    {0xc0e2cdd99999999aULL, "-38510.8"},
    {0xc08f2e51eb851eb8ULL, "-997.79"},
    {0x40f03cc9f7ced917ULL, "66508.623"},
    {0x40f5b24ea5119ce0ULL, "88868.9153"},
    {0xc0e0f58000000000ULL, "-34732.0"},
    {0x40ea64a000000000ULL, "54053.0"},
    {0xc0daacf333333333ULL, "-27315.8"},
    {0x4090780000000000ULL, "1054.0"},
    {0xc0f5c24160418937ULL, "-89124.086"},
    {0x40f3354666666666ULL, "78676.4"},
    {0xc0ea473c7ae147aeULL, "-53817.89"},
    {0x40c0f4c4bc6a7efaULL, "8681.537"},
    {0xc0f1b39c71de69adULL, "-72505.7778"},
    {0x40d05e5b53f7ced9ULL, "16761.427"},
    {0xc0f3664c95182a99ULL, "-79460.7864"},
    {0x40e41a3947ae147bULL, "41169.79"},
    {0xc0c9c44ccccccccdULL, "-13192.6"},
    {0x40e9c30000000000ULL, "52760.0"},
    {0x40a65d999999999aULL, "2862.8"},
    {0xc0d7dbddeecbfb16ULL, "-24431.4677"},
    {0xc0d22c725c91d14eULL, "-18609.7869"},
    {0x40ec2cfccccccccdULL, "57703.9"},
    {0x40c451428f5c28f6ULL, "10402.52"},
    {0x40f37a61eb851eb8ULL, "79782.12"},
    {0x40d1dc64ed916873ULL, "18289.577"},
    {0x40dad8d8b4395810ULL, "27491.386"},
    {0xc0d3e5470a3d70a4ULL, "-20373.11"},
    {0xc0e1c053fbe76c8bULL, "-36354.6245"},
    {0xc0ea8b6ccccccccdULL, "-54363.4"},
    {0xc0eaab6cfdf3b646ULL, "-54619.406"},
    {0x40cc86b1eb851eb8ULL, "14605.39"},
    {0x40f676799999999aULL, "92007.6"},
    {0xc0b8b98666666666ULL, "-6329.525"},
    {0xc0f5c957a1cac083ULL, "-89237.477"},
    {0x40eff47ccccccccdULL, "65443.9"},
    {0xc0e72884147ae148ULL, "-47428.1275"},
    {0xc0f1d77547ae147bULL, "-73079.33"},
    {0xc0e5025154c985f0ULL, "-43026.5416"},
    {0x40edd1b99999999aULL, "61069.8"},
    {0x40e9ccd0db8bac71ULL, "52838.5268"},
    {0xc0eb51a295e9e1b1ULL, "-55949.0808"},
    {0xc0e55d1333333333ULL, "-43752.6"},
    {0x40dce23be76c8b44ULL, "29576.936"},
    {0x40e7544666666666ULL, "47778.2"},
    {0x40f69b64e147ae14ULL, "92598.305"},
    {0x40ee050000000000ULL, "61480.0"},
    {0x40d3105a3d70a3d7ULL, "19521.41"},
};

TEST(json_double_matches_python_repr_table)
{
    char o[40];
    for (size_t i = 0; i < sizeof(double_table) / sizeof(double_table[0]); i++) {
        size_t n = pt_json_format_double(from_bits(double_table[i].bits), o);
        ASSERT_STREQ(o, double_table[i].repr);
        ASSERT_EQ(n, strlen(double_table[i].repr));
    }
}

/* For doubles from random bit patterns: the text reads back exactly, uses at most 17
 * significant digits, and follows repr's layout (a '.', or an exponent, never both "e"
 * and a trailing ".0"). */
TEST(json_double_random_roundtrip)
{
    uint64_t x = 0x9E3779B97F4A7C15ULL;
    char o[40];
    for (int i = 0; i < 20000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        double v = from_bits(x);
        if (!isfinite(v))
            continue;
        size_t n = pt_json_format_double(v, o);
        ASSERT_EQ(n, strlen(o));
        ASSERT_LT(n, 32);
        ASSERT_TRUE(strtod(o, NULL) == v);
        ASSERT_TRUE(strchr(o, '.') != NULL || strchr(o, 'e') != NULL);
        int digits = 0;
        for (const char *p = o; *p && *p != 'e'; p++)
            digits += *p >= '0' && *p <= '9';
        ASSERT_LE(digits, 17 + 16); /* positional notation pads with zeros below 1e16 */
    }
}

TEST(json_int)
{
    pt_buf b;
    pt_buf_init(&b, 0);
    ASSERT_EQ(pt_json_int(&b, 0), 0);
    ASSERT_EQ(pt_buf_putc(&b, ' '), 0);
    ASSERT_EQ(pt_json_int(&b, -1), 0);
    ASSERT_EQ(pt_buf_putc(&b, ' '), 0);
    ASSERT_EQ(pt_json_int(&b, 1234567890), 0);
    ASSERT_EQ(pt_buf_putc(&b, ' '), 0);
    ASSERT_EQ(pt_json_int(&b, INT64_MAX), 0);
    ASSERT_EQ(pt_buf_putc(&b, ' '), 0);
    ASSERT_EQ(pt_json_int(&b, INT64_MIN), 0);
    ASSERT_STREQ(b.data, "0 -1 1234567890 9223372036854775807 -9223372036854775808");
    pt_buf_free(&b);
}

TEST(json_string_plain_and_escapes)
{
    CHECK_CSTRING("", "\"\"");
    CHECK_CSTRING("hello world", "\"hello world\"");
    CHECK_CSTRING("a\"b\\c/d", "\"a\\\"b\\\\c/d\"");
    CHECK_CSTRING("\n\r\t\b\f", "\"\\n\\r\\t\\b\\f\"");
    CHECK_CSTRING("\x01\x1f", "\"\\u0001\\u001f\"");
    CHECK_CSTRING("\x7f", "\"\x7f\"");
    CHECK_STRING("a\0b", 3, "\"a\\u0000b\"");
}

TEST(json_string_keeps_valid_utf8)
{
    CHECK_CSTRING("caf\xc3\xa9", "\"caf\xc3\xa9\"");           /* U+00E9 */
    CHECK_CSTRING("\xe2\x82\xac", "\"\xe2\x82\xac\"");         /* U+20AC */
    CHECK_CSTRING("\xf0\x9f\x98\x80", "\"\xf0\x9f\x98\x80\""); /* U+1F600 */
    CHECK_CSTRING("\xed\x9f\xbf", "\"\xed\x9f\xbf\"");         /* U+D7FF */
    CHECK_CSTRING("\xee\x80\x80", "\"\xee\x80\x80\"");         /* U+E000 */
    CHECK_CSTRING("\xef\xbf\xbf", "\"\xef\xbf\xbf\"");         /* U+FFFF */
    CHECK_CSTRING("\xf0\x90\x80\x80", "\"\xf0\x90\x80\x80\""); /* U+10000 */
    CHECK_CSTRING("\xf4\x8f\xbf\xbf", "\"\xf4\x8f\xbf\xbf\""); /* U+10FFFF */
    CHECK_CSTRING("\xe2\x80\xa8", "\"\xe2\x80\xa8\"");         /* U+2028 */
}

#define R "\xef\xbf\xbd" /* U+FFFD */

/* Each maximal ill-formed subpart becomes one U+FFFD, as Python's errors="replace" does. */
TEST(json_string_replaces_invalid_utf8)
{
    CHECK_CSTRING("\x80", "\"" R "\""); /* lone continuation */
    CHECK_CSTRING("a\xbfz", "\"a" R "z\"");
    CHECK_CSTRING("\xc0\xaf", "\"" R R "\""); /* overlong '/' */
    CHECK_CSTRING("\xc1\xbf", "\"" R R "\"");
    CHECK_CSTRING("\xe0\x80\xaf", "\"" R R R "\"");       /* overlong, 3 bytes */
    CHECK_CSTRING("\xf0\x80\x80\xaf", "\"" R R R R "\""); /* overlong, 4 bytes */
    CHECK_CSTRING("\xed\xa0\x80", "\"" R R R "\"");       /* surrogate U+D800 */
    CHECK_CSTRING("\xed\xbf\xbf", "\"" R R R "\"");       /* surrogate U+DFFF */
    CHECK_CSTRING("\xf4\x90\x80\x80", "\"" R R R R "\""); /* U+110000 */
    CHECK_CSTRING("\xf5\x80\x80\x80", "\"" R R R R "\"");
    CHECK_CSTRING("\xf8\x88\x80\x80\x80", "\"" R R R R R "\"");
    CHECK_CSTRING("\xfe\xff", "\"" R R "\"");
    CHECK_CSTRING("\xe2\x82", "\"" R "\"");      /* truncated at end */
    CHECK_CSTRING("\xe2\x82\x41", "\"" R "A\""); /* truncated mid-text */
    CHECK_CSTRING("\xf0\x9f\x98", "\"" R "\"");
    CHECK_CSTRING("\xf0\x9f\x98\xe2\x82\xac", "\"" R "\xe2\x82\xac\"");
    CHECK_CSTRING("\xc3", "\"" R "\"");
    CHECK_CSTRING("\xc3\"", "\"" R "\\\"\"");
}

TEST(json_string_respects_cap)
{
    pt_buf b;
    pt_buf_init(&b, 12);
    ASSERT_EQ(pt_buf_puts(&b, "[1,"), 0);
    ASSERT_EQ(pt_json_string(&b, "abcdefghij", 10), PT_ETOOBIG);
    ASSERT_STREQ(b.data, "[1,");
    ASSERT_EQ(pt_json_string(&b, "\n\n\n\n", 4), PT_ETOOBIG); /* fits raw, not escaped */
    ASSERT_STREQ(b.data, "[1,");
    ASSERT_EQ(b.len, 3);
    ASSERT_EQ(pt_json_string(&b, "\n\n", 2), 0);
    ASSERT_STREQ(b.data, "[1,\"\\n\\n\"");
    pt_buf_free(&b);
}

TEST(json_string_long_mixed)
{
    pt_buf b;
    char in[5000];
    pt_buf_init(&b, 0);
    for (size_t i = 0; i < sizeof(in); i++)
        in[i] = (char)(i % 3 == 0 ? '\n' : 'x');
    ASSERT_EQ(pt_json_string(&b, in, sizeof(in)), 0);
    ASSERT_EQ(b.len, 2 + sizeof(in) + (sizeof(in) + 2) / 3);
    ASSERT_EQ(strlen(b.data), b.len);
    pt_buf_free(&b);
}
