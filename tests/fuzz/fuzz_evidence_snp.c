/*
 * Fuzzes the SEV-SNP verifier: the input is a report, verified in full
 * (strict parse, claims, chain checks at a fixed time, the ECDSA signature,
 * TCB and chip binding) against AMD certificates loaded once. The
 * certificates are picked as a verifier would fetch them: a VLEK-signed
 * report gets the VLEK of set S3, a VCEK-signed one the VCEK whose chip
 * matches CHIP_ID (S1, S2, S6; S1 otherwise). Invariant: a report that
 * verifies has the signed bytes of one of the four genuine reports -
 * anything else would be a forgery. The seed corpus is the staged reports
 * plus hand-mutated ones (tests/fuzz/corpus/evidence_snp/).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "coffer/crypto.h"
#include "coffer/evidence.h"

#include "../../lib/evidence/snp_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The certificates of testdata/README.md sets S1, S2, S3, S6 (PEM, public). */
/* go-sev-guest verify/trust/ask_ark_milan.pem: SEV-Milan (ASK) */
static const char ask_milan[] =
	"-----BEGIN CERTIFICATE-----\n"
	"MIIGiTCCBDigAwIBAgIDAQABMEYGCSqGSIb3DQEBCjA5oA8wDQYJYIZIAWUDBAIC\n"
	"BQChHDAaBgkqhkiG9w0BAQgwDQYJYIZIAWUDBAICBQCiAwIBMKMDAgEBMHsxFDAS\n"
	"BgNVBAsMC0VuZ2luZWVyaW5nMQswCQYDVQQGEwJVUzEUMBIGA1UEBwwLU2FudGEg\n"
	"Q2xhcmExCzAJBgNVBAgMAkNBMR8wHQYDVQQKDBZBZHZhbmNlZCBNaWNybyBEZXZp\n"
	"Y2VzMRIwEAYDVQQDDAlBUkstTWlsYW4wHhcNMjAxMDIyMTgyNDIwWhcNNDUxMDIy\n"
	"MTgyNDIwWjB7MRQwEgYDVQQLDAtFbmdpbmVlcmluZzELMAkGA1UEBhMCVVMxFDAS\n"
	"BgNVBAcMC1NhbnRhIENsYXJhMQswCQYDVQQIDAJDQTEfMB0GA1UECgwWQWR2YW5j\n"
	"ZWQgTWljcm8gRGV2aWNlczESMBAGA1UEAwwJU0VWLU1pbGFuMIICIjANBgkqhkiG\n"
	"9w0BAQEFAAOCAg8AMIICCgKCAgEAnU2drrNTfbhNQIllf+W2y+ROCbSzId1aKZft\n"
	"2T9zjZQOzjGccl17i1mIKWl7NTcB0VYXt3JxZSzOZjsjLNVAEN2MGj9TiedL+Qew\n"
	"KZX0JmQEuYjm+WKksLtxgdLp9E7EZNwNDqV1r0qRP5tB8OWkyQbIdLeu4aCz7j/S\n"
	"l1FkBytev9sbFGzt7cwnjzi9m7noqsk+uRVBp3+In35QPdcj8YflEmnHBNvuUDJh\n"
	"LCJMW8KOjP6++Phbs3iCitJcANEtW4qTNFoKW3CHlbcSCjTM8KsNbUx3A8ek5EVL\n"
	"jZWH1pt9E3TfpR6XyfQKnY6kl5aEIPwdW3eFYaqCFPrIo9pQT6WuDSP4JCYJbZne\n"
	"KKIbZjzXkJt3NQG32EukYImBb9SCkm9+fS5LZFg9ojzubMX3+NkBoSXI7OPvnHMx\n"
	"jup9mw5se6QUV7GqpCA2TNypolmuQ+cAaxV7JqHE8dl9pWf+Y3arb+9iiFCwFt4l\n"
	"AlJw5D0CTRTC1Y5YWFDBCrA/vGnmTnqG8C+jjUAS7cjjR8q4OPhyDmJRPnaC/ZG5\n"
	"uP0K0z6GoO/3uen9wqshCuHegLTpOeHEJRKrQFr4PVIwVOB0+ebO5FgoyOw43nyF\n"
	"D5UKBDxEB4BKo/0uAiKHLRvvgLbORbU8KARIs1EoqEjmF8UtrmQWV2hUjwzqwvHF\n"
	"ei8rPxMCAwEAAaOBozCBoDAdBgNVHQ4EFgQUO8ZuGCrD/T1iZEib47dHLLT8v/gw\n"
	"HwYDVR0jBBgwFoAUhawa0UP3yKxV1MUdQUir1XhK1FMwEgYDVR0TAQH/BAgwBgEB\n"
	"/wIBADAOBgNVHQ8BAf8EBAMCAQQwOgYDVR0fBDMwMTAvoC2gK4YpaHR0cHM6Ly9r\n"
	"ZHNpbnRmLmFtZC5jb20vdmNlay92MS9NaWxhbi9jcmwwRgYJKoZIhvcNAQEKMDmg\n"
	"DzANBglghkgBZQMEAgIFAKEcMBoGCSqGSIb3DQEBCDANBglghkgBZQMEAgIFAKID\n"
	"AgEwowMCAQEDggIBAIgeUQScAf3lDYqgWU1VtlDbmIN8S2dC5kmQzsZ/HtAjQnLE\n"
	"PI1jh3gJbLxL6gf3K8jxctzOWnkYcbdfMOOr28KT35IaAR20rekKRFptTHhe+DFr\n"
	"3AFzZLDD7cWK29/GpPitPJDKCvI7A4Ug06rk7J0zBe1fz/qe4i2/F12rvfwCGYhc\n"
	"RxPy7QF3q8fR6GCJdB1UQ5SlwCjFxD4uezURztIlIAjMkt7DFvKRh+2zK+5plVGG\n"
	"FsjDJtMz2ud9y0pvOE4j3dH5IW9jGxaSGStqNrabnnpF236ETr1/a43b8FFKL5QN\n"
	"mt8Vr9xnXRpznqCRvqjr+kVrb6dlfuTlliXeQTMlBoRWFJORL8AcBJxGZ4K2mXft\n"
	"l1jU5TLeh5KXL9NW7a/qAOIUs2FiOhqrtzAhJRg9Ij8QkQ9Pk+cKGzw6El3T3kFr\n"
	"Eg6zkxmvMuabZOsdKfRkWfhH2ZKcTlDfmH1H0zq0Q2bG3uvaVdiCtFY1LlWyB38J\n"
	"S2fNsR/Py6t5brEJCFNvzaDky6KeC4ion/cVgUai7zzS3bGQWzKDKU35SqNU2WkP\n"
	"I8xCZ00WtIiKKFnXWUQxvlKmmgZBIYPe01zD0N8atFxmWiSnfJl690B9rJpNR/fI\n"
	"ajxCW3Seiws6r1Zm+tCuVbMiNtpS9ThjNX4uve5thyfE2DgoxRFvY1CsoF5M\n"
	"-----END CERTIFICATE-----\n";

/* go-sev-guest verify/trust/ask_ark_milan_vlek.pem: SEV-VLEK-Milan (ASVK) */
static const char asvk_milan[] =
	"-----BEGIN CERTIFICATE-----\n"
	"MIIGjzCCBD6gAwIBAgIDAQEBMEYGCSqGSIb3DQEBCjA5oA8wDQYJYIZIAWUDBAIC\n"
	"BQChHDAaBgkqhkiG9w0BAQgwDQYJYIZIAWUDBAICBQCiAwIBMKMDAgEBMHsxFDAS\n"
	"BgNVBAsMC0VuZ2luZWVyaW5nMQswCQYDVQQGEwJVUzEUMBIGA1UEBwwLU2FudGEg\n"
	"Q2xhcmExCzAJBgNVBAgMAkNBMR8wHQYDVQQKDBZBZHZhbmNlZCBNaWNybyBEZXZp\n"
	"Y2VzMRIwEAYDVQQDDAlBUkstTWlsYW4wHhcNMjIxMTE2MjI0NTI0WhcNNDcxMTE2\n"
	"MjI0NTI0WjCBgDEUMBIGA1UECwwLRW5naW5lZXJpbmcxCzAJBgNVBAYTAlVTMRQw\n"
	"EgYDVQQHDAtTYW50YSBDbGFyYTELMAkGA1UECAwCQ0ExHzAdBgNVBAoMFkFkdmFu\n"
	"Y2VkIE1pY3JvIERldmljZXMxFzAVBgNVBAMMDlNFVi1WTEVLLU1pbGFuMIICIjAN\n"
	"BgkqhkiG9w0BAQEFAAOCAg8AMIICCgKCAgEA1EUWkz5FTPz+uWT2hCEyisam8FRu\n"
	"XZAmS3l+rXgSCeS1Q0+1olcnFSJpiwfssfhoutJqePyicu+OhkX131PMeO/VOtH3\n"
	"upK4YNJmq36IJp7ZWIm5nK2fJNkYEHW0m/NXcIA9U2iHl5bAQ5cbGp97/FaOJ4Vm\n"
	"GoTMV658Yox/plFmZRFfRcsw2hyNhqUl1gzdpnIIgPkygUovFEgaa0IVSgGLHQhZ\n"
	"QiebNLLSVWRVReve0t94zlRIRRdrz84cckP9H9DTAUMyQaxSZbPINKbV6TPmtrwA\n"
	"V9UP1Qq418xn9I+C0SsWutP/5S1OiL8OTzQ4CvgbHOfd2F3yVv4xDBza4SelF2ig\n"
	"oDf+BF4XI/IIHJL2N5uKy3+gkSB2Xl6prohgVmqRFvBW9OTCEa32WhXu0t1Z1abE\n"
	"KDZ3LpZt9/Crg6zyPpXDLR/tLHHpSaPRj7CTzHieKMTz+Q6RrCCQcHGfaAD/ETNY\n"
	"56aHvNJRZgbzXDUJvnLr3dYyOvvn/DtKhCSimJynn7Len4ArDVQVwXRPe3hR/asC\n"
	"E2CajT7kGC1AOtUzQuIKZS2D0Qk74g297JhLHpEBlQiyjRJ+LCWZNx9uJcixGyza\n"
	"v6fiOWx4U8uWhRzHs8nvDAdcS4LW31tPlA9BeOK/BGimQTu7hM5MDFZL0C9dWK5p\n"
	"uCUJex6I2vSqvycCAwEAAaOBozCBoDAdBgNVHQ4EFgQUNuJXE6qi45/CgqkKRPtV\n"
	"LObC7pEwHwYDVR0jBBgwFoAUhawa0UP3yKxV1MUdQUir1XhK1FMwEgYDVR0TAQH/\n"
	"BAgwBgEB/wIBADAOBgNVHQ8BAf8EBAMCAQQwOgYDVR0fBDMwMTAvoC2gK4YpaHR0\n"
	"cHM6Ly9rZHNpbnRmLmFtZC5jb20vdmxlay92MS9NaWxhbi9jcmwwRgYJKoZIhvcN\n"
	"AQEKMDmgDzANBglghkgBZQMEAgIFAKEcMBoGCSqGSIb3DQEBCDANBglghkgBZQME\n"
	"AgIFAKIDAgEwowMCAQEDggIBAI7ayEXDNj1rCVnjQFb6L91NNOmEIOmi6XtopAqr\n"
	"8fj7wqXap1MY82Y0AIi1K9R7C7G1sCmY8QyEyX0zqHsoNbU2IMcSdZrIp8neT8af\n"
	"v8tPt7qoW3hZ+QQRMtgVkVVrjJZelvlB74xr5ifDcDiBd2vu/C9IqoQS4pVBKNSF\n"
	"pofzjtYKvebBBBXxeM2b901UxNgVjCY26TtHEWN9cA6cDVqDDCCL6uOeR9UOvKDS\n"
	"SqlM6nXldSj7bgK7Wh9M9587IwRvNZluXc1CDiKMZybLdSKOlyMJH9ss1GPn0eBV\n"
	"EhVjf/gttn7HrcQ9xJZVXyDtL3tkGzemrPK14NOYzmph6xr1iiedAzOVpNdPiEXn\n"
	"2lvas0P4TD9UgBh0Y7xyf2yENHiSgJT4T8Iktm/TSzuh4vqkQ72A1HdNTGjoZcfz\n"
	"KCsQJ/YuFICeaNxw5cIAGBK/o+6Ek32NPv5XtixNOhEx7GsaVRG05bq5oTt14b4h\n"
	"KYhqV1CDrX5hiVRpFFDs/sAGfgTzLdiGXLcvYAUz1tCKIT/eQS9c4/yitn4F3mCP\n"
	"d4uQB+fggMtK0qPRthpFtc2SqVCTvHnhxyXqo7GpXMsssgLgKNwaFPe2+Ld5OwPR\n"
	"6Pokji9h55m05Dxob8XtD4gW6oFLo9Icg7XqdOr9Iip5RBIPxy7rKk/ReqGs9KH7\n"
	"0YPk\n"
	"-----END CERTIFICATE-----\n";

/* ARK-Milan (both files) */
static const char ark_milan[] =
	"-----BEGIN CERTIFICATE-----\n"
	"MIIGYzCCBBKgAwIBAgIDAQAAMEYGCSqGSIb3DQEBCjA5oA8wDQYJYIZIAWUDBAIC\n"
	"BQChHDAaBgkqhkiG9w0BAQgwDQYJYIZIAWUDBAICBQCiAwIBMKMDAgEBMHsxFDAS\n"
	"BgNVBAsMC0VuZ2luZWVyaW5nMQswCQYDVQQGEwJVUzEUMBIGA1UEBwwLU2FudGEg\n"
	"Q2xhcmExCzAJBgNVBAgMAkNBMR8wHQYDVQQKDBZBZHZhbmNlZCBNaWNybyBEZXZp\n"
	"Y2VzMRIwEAYDVQQDDAlBUkstTWlsYW4wHhcNMjAxMDIyMTcyMzA1WhcNNDUxMDIy\n"
	"MTcyMzA1WjB7MRQwEgYDVQQLDAtFbmdpbmVlcmluZzELMAkGA1UEBhMCVVMxFDAS\n"
	"BgNVBAcMC1NhbnRhIENsYXJhMQswCQYDVQQIDAJDQTEfMB0GA1UECgwWQWR2YW5j\n"
	"ZWQgTWljcm8gRGV2aWNlczESMBAGA1UEAwwJQVJLLU1pbGFuMIICIjANBgkqhkiG\n"
	"9w0BAQEFAAOCAg8AMIICCgKCAgEA0Ld52RJOdeiJlqK2JdsVmD7FktuotWwX1fNg\n"
	"W41XY9Xz1HEhSUmhLz9Cu9DHRlvgJSNxbeYYsnJfvyjx1MfU0V5tkKiU1EesNFta\n"
	"1kTA0szNisdYc9isqk7mXT5+KfGRbfc4V/9zRIcE8jlHN61S1ju8X93+6dxDUrG2\n"
	"SzxqJ4BhqyYmUDruPXJSX4vUc01P7j98MpqOS95rORdGHeI52Naz5m2B+O+vjsC0\n"
	"60d37jY9LFeuOP4Meri8qgfi2S5kKqg/aF6aPtuAZQVR7u3KFYXP59XmJgtcog05\n"
	"gmI0T/OitLhuzVvpZcLph0odh/1IPXqx3+MnjD97A7fXpqGd/y8KxX7jksTEzAOg\n"
	"bKAeam3lm+3yKIcTYMlsRMXPcjNbIvmsBykD//xSniusuHBkgnlENEWx1UcbQQrs\n"
	"+gVDkuVPhsnzIRNgYvM48Y+7LGiJYnrmE8xcrexekBxrva2V9TJQqnN3Q53kt5vi\n"
	"Qi3+gCfmkwC0F0tirIZbLkXPrPwzZ0M9eNxhIySb2npJfgnqz55I0u33wh4r0ZNQ\n"
	"eTGfw03MBUtyuzGesGkcw+loqMaq1qR4tjGbPYxCvpCq7+OgpCCoMNit2uLo9M18\n"
	"fHz10lOMT8nWAUvRZFzteXCm+7PHdYPlmQwUw3LvenJ/ILXoQPHfbkH0CyPfhl1j\n"
	"WhJFZasCAwEAAaN+MHwwDgYDVR0PAQH/BAQDAgEGMB0GA1UdDgQWBBSFrBrRQ/fI\n"
	"rFXUxR1BSKvVeErUUzAPBgNVHRMBAf8EBTADAQH/MDoGA1UdHwQzMDEwL6AtoCuG\n"
	"KWh0dHBzOi8va2RzaW50Zi5hbWQuY29tL3ZjZWsvdjEvTWlsYW4vY3JsMEYGCSqG\n"
	"SIb3DQEBCjA5oA8wDQYJYIZIAWUDBAICBQChHDAaBgkqhkiG9w0BAQgwDQYJYIZI\n"
	"AWUDBAICBQCiAwIBMKMDAgEBA4ICAQC6m0kDp6zv4Ojfgy+zleehsx6ol0ocgVel\n"
	"ETobpx+EuCsqVFRPK1jZ1sp/lyd9+0fQ0r66n7kagRk4Ca39g66WGTJMeJdqYriw\n"
	"STjjDCKVPSesWXYPVAyDhmP5n2v+BYipZWhpvqpaiO+EGK5IBP+578QeW/sSokrK\n"
	"dHaLAxG2LhZxj9aF73fqC7OAJZ5aPonw4RE299FVarh1Tx2eT3wSgkDgutCTB1Yq\n"
	"zT5DuwvAe+co2CIVIzMDamYuSFjPN0BCgojl7V+bTou7dMsqIu/TW/rPCX9/EUcp\n"
	"KGKqPQ3P+N9r1hjEFY1plBg93t53OOo49GNI+V1zvXPLI6xIFVsh+mto2RtgEX/e\n"
	"pmMKTNN6psW88qg7c1hTWtN6MbRuQ0vm+O+/2tKBF2h8THb94OvvHHoFDpbCELlq\n"
	"HnIYhxy0YKXGyaW1NjfULxrrmxVW4wcn5E8GddmvNa6yYm8scJagEi13mhGu4Jqh\n"
	"3QU3sf8iUSUr09xQDwHtOQUVIqx4maBZPBtSMf+qUDtjXSSq8lfWcd8bLr9mdsUn\n"
	"JZJ0+tuPMKmBnSH860llKk+VpVQsgqbzDIvOLvD6W1Umq25boxCYJ+TuBoa4s+HH\n"
	"CViAvgT9kf/rBq1d+ivj6skkHxuzcxbk1xv6ZGxrteJxVH7KlX7YRdZ6eARKwLe4\n"
	"AFZEAwoKCQ==\n"
	"-----END CERTIFICATE-----\n";

/* S1: go-sev-guest verify/testdata/vcek.testcer */
static const char vcek_s1[] =
	"-----BEGIN CERTIFICATE-----\n"
	"MIIFTDCCAvugAwIBAgIBADBGBgkqhkiG9w0BAQowOaAPMA0GCWCGSAFlAwQCAgUA\n"
	"oRwwGgYJKoZIhvcNAQEIMA0GCWCGSAFlAwQCAgUAogMCATCjAwIBATB7MRQwEgYD\n"
	"VQQLDAtFbmdpbmVlcmluZzELMAkGA1UEBhMCVVMxFDASBgNVBAcMC1NhbnRhIENs\n"
	"YXJhMQswCQYDVQQIDAJDQTEfMB0GA1UECgwWQWR2YW5jZWQgTWljcm8gRGV2aWNl\n"
	"czESMBAGA1UEAwwJU0VWLU1pbGFuMB4XDTIyMDkyNDAwNTUyOFoXDTI5MDkyNDAw\n"
	"NTUyOFowejEUMBIGA1UECwwLRW5naW5lZXJpbmcxCzAJBgNVBAYTAlVTMRQwEgYD\n"
	"VQQHDAtTYW50YSBDbGFyYTELMAkGA1UECAwCQ0ExHzAdBgNVBAoMFkFkdmFuY2Vk\n"
	"IE1pY3JvIERldmljZXMxETAPBgNVBAMMCFNFVi1WQ0VLMHYwEAYHKoZIzj0CAQYF\n"
	"K4EEACIDYgAESOyfNi7t7l6hdlk50wrGwFbIIZreccWF0uIfdzzeQw8wsg1quBff\n"
	"jo3h2Fzyk6OFTwhgnX8A9IUszYOIJ3Kr/oL/zHD6imP7lPUyyEDy56g1YHzHJb8S\n"
	"W4hP/skETj75o4IBFjCCARIwEAYJKwYBBAGceAEBBAMCAQAwFwYJKwYBBAGceAEC\n"
	"BAoWCE1pbGFuLUIwMBEGCisGAQQBnHgBAwEEAwIBAjARBgorBgEEAZx4AQMCBAMC\n"
	"AQAwEQYKKwYBBAGceAEDBAQDAgEAMBEGCisGAQQBnHgBAwUEAwIBADARBgorBgEE\n"
	"AZx4AQMGBAMCAQAwEQYKKwYBBAGceAEDBwQDAgEAMBEGCisGAQQBnHgBAwMEAwIB\n"
	"BTARBgorBgEEAZx4AQMIBAMCAUQwTQYJKwYBBAGceAEEBEA6w/4h4T+wmQ6yioAu\n"
	"P7ailIOmsHU1kMlRvdO45TeGGEyjnjWWaaK3ahk2d2tWTqRkzc5AwF9jybYQxQaL\n"
	"AGtdMEYGCSqGSIb3DQEBCjA5oA8wDQYJYIZIAWUDBAICBQChHDAaBgkqhkiG9w0B\n"
	"AQgwDQYJYIZIAWUDBAICBQCiAwIBMKMDAgEBA4ICAQAnOEvE6ryFTfGrmOWcVNjS\n"
	"wNM3H/7r1uDGX7mU5tAREks6LDY0lI0QdaraM2Wj/G5qF3R6ACtM6O8q57A7/ZsL\n"
	"ZdZV5kpQIUvLFV2zo0kRBakDiLdjN9I5XFeOg+BVZj9OcfibMYVrmuSPpwwdR8hR\n"
	"H7sTwriVZzDmPi+C4toC1RMPQFrZUNS/uzfQnw8tnPtyfwbPtmlp0aZHGNSRf2gH\n"
	"RrBVVD2b9prbP66bR17JMNWCz1PXuVGnKtwlTX3hJEeq0HGICgllo8pzSlIkF31v\n"
	"2RZ4Jxb1tP0mRw5aquDuy031nmoNA3NYuny/ji7BtJb8HzxqpxBgn+FDUHyZqjUs\n"
	"xqarvTBgIaK1EEQHINC9HEoqzN8PM7FWXjA01nEyyUpiHhup7eMaOz5nF8LDv5dV\n"
	"fOuYwXSJXfuytIfDOM6tc/mesKy1SlNIEsVy5MQidK0hINIGLbpXRPMzNBECXka6\n"
	"/6vxb3ctLFFpgWHk/MAOo3FQvrA82W96uRD66akGB1RH2XVXVlXoAS/u04PLx+nc\n"
	"eNPTcwc93+IlGKKdBNRk7hPs3bTI2H/oZfY0WyoMYSCH58iDDEd3FxjDJ1dwqVui\n"
	"WZf2rjbv/iMZN2oWHFUkcnELQhTIzSXI8yGdqxBP44GAbjnb53jadZklmAeL4sRj\n"
	"1FDfJiVKYRb60yv4hqUMWw==\n"
	"-----END CERTIFICATE-----\n";

/* S2: trustee test-vcek.der */
static const char vcek_s2[] =
	"-----BEGIN CERTIFICATE-----\n"
	"MIIFTDCCAvugAwIBAgIBADBGBgkqhkiG9w0BAQowOaAPMA0GCWCGSAFlAwQCAgUA\n"
	"oRwwGgYJKoZIhvcNAQEIMA0GCWCGSAFlAwQCAgUAogMCATCjAwIBATB7MRQwEgYD\n"
	"VQQLDAtFbmdpbmVlcmluZzELMAkGA1UEBhMCVVMxFDASBgNVBAcMC1NhbnRhIENs\n"
	"YXJhMQswCQYDVQQIDAJDQTEfMB0GA1UECgwWQWR2YW5jZWQgTWljcm8gRGV2aWNl\n"
	"czESMBAGA1UEAwwJU0VWLU1pbGFuMB4XDTIzMDEyNDE3NTgyNloXDTMwMDEyNDE3\n"
	"NTgyNlowejEUMBIGA1UECwwLRW5naW5lZXJpbmcxCzAJBgNVBAYTAlVTMRQwEgYD\n"
	"VQQHDAtTYW50YSBDbGFyYTELMAkGA1UECAwCQ0ExHzAdBgNVBAoMFkFkdmFuY2Vk\n"
	"IE1pY3JvIERldmljZXMxETAPBgNVBAMMCFNFVi1WQ0VLMHYwEAYHKoZIzj0CAQYF\n"
	"K4EEACIDYgAExmG1ZbuoAQK93USRyZQcsyobfbaAEoKEELf/jK39cOVJt1t4s83W\n"
	"XM3rqIbS7qHUHQw/FGyOvdaEUs5+wwxpCWfDnmJMAQ+ctgZqgDEKh1NqlOuuKcKq\n"
	"2YAWE5cTH7sHo4IBFjCCARIwEAYJKwYBBAGceAEBBAMCAQAwFwYJKwYBBAGceAEC\n"
	"BAoWCE1pbGFuLUIwMBEGCisGAQQBnHgBAwEEAwIBAzARBgorBgEEAZx4AQMCBAMC\n"
	"AQAwEQYKKwYBBAGceAEDBAQDAgEAMBEGCisGAQQBnHgBAwUEAwIBADARBgorBgEE\n"
	"AZx4AQMGBAMCAQAwEQYKKwYBBAGceAEDBwQDAgEAMBEGCisGAQQBnHgBAwMEAwIB\n"
	"CDARBgorBgEEAZx4AQMIBAMCAXMwTQYJKwYBBAGceAEEBEDDhCejDUx6+dlvehW5\n"
	"cmmCWmTLdqI1L/1dGBFdia1HP46MC82aXZKGYSutSq37RCYgWjueT+qCMBE1oXDk\n"
	"d1JOMEYGCSqGSIb3DQEBCjA5oA8wDQYJYIZIAWUDBAICBQChHDAaBgkqhkiG9w0B\n"
	"AQgwDQYJYIZIAWUDBAICBQCiAwIBMKMDAgEBA4ICAQACgCai9x8DAWzX/2IelNWm\n"
	"ituEBSiq9C9eDnBEckQYikAhPasfagnoWFAtKu/ZWTKHi+BMbhKwswBS8W0G1ywi\n"
	"cUWGlzigI4tdxxf1YBJyCoTSNssSbKmIh5jemBfrvIBo1yEd+e56ZJMdhN8e+xWU\n"
	"bvovUC2/7Dl76fzAaACLSorZUv5XPJwKXwEOHo7FIcREjoZn+fKjJTnmdXce0LD6\n"
	"9RHr+r+ceyE79gmK31bI9DYiJoL4LeGdXZ3gMOVDR1OnDos5lOBcV+quJ6JujpgH\n"
	"d9g3Sa7Du7pusD9Fdap98ocZslRfFjFi//2YdVM4MKbq6IwpYNB+2PCEKNC7SfbO\n"
	"NgZYJuPZnM/wViES/cP7MZNJ1KUKBI9yh6TmlSsZZOclGJvrOsBZimTXpATjdNMt\n"
	"cluKwqAUUzYQmU7bf2TMdOXyA9iH5wIpj1kWGE1VuFADTKILkTc6LzLzOWCofLxf\n"
	"onhTtSDtzIv/uel547GZqq+rVRvmIieEuEvDETwuookfV6qu3D/9KuSr9xiznmEg\n"
	"xynud/f525jppJMcD/ofbQxUZuGKvb3f3zy+aLxqidoX7gca2Xd9jyUy5Y/83+ZN\n"
	"bz4PZx81UJzXVI9ABEh8/xilATh1ZxOePTBJjN7lgr0lXtKYjV/43yyxgUYrXNZS\n"
	"oLSG2dLCK9mjjraPjau34Q==\n"
	"-----END CERTIFICATE-----\n";

/* S6: virtee/sev tests/certs_data/vcek_milan.der */
static const char vcek_s6[] =
	"-----BEGIN CERTIFICATE-----\n"
	"MIIFTDCCAvugAwIBAgIBADBGBgkqhkiG9w0BAQowOaAPMA0GCWCGSAFlAwQCAgUA\n"
	"oRwwGgYJKoZIhvcNAQEIMA0GCWCGSAFlAwQCAgUAogMCATCjAwIBATB7MRQwEgYD\n"
	"VQQLDAtFbmdpbmVlcmluZzELMAkGA1UEBhMCVVMxFDASBgNVBAcMC1NhbnRhIENs\n"
	"YXJhMQswCQYDVQQIDAJDQTEfMB0GA1UECgwWQWR2YW5jZWQgTWljcm8gRGV2aWNl\n"
	"czESMBAGA1UEAwwJU0VWLU1pbGFuMB4XDTIzMDQwMzE5MjM0M1oXDTMwMDQwMzE5\n"
	"MjM0M1owejEUMBIGA1UECwwLRW5naW5lZXJpbmcxCzAJBgNVBAYTAlVTMRQwEgYD\n"
	"VQQHDAtTYW50YSBDbGFyYTELMAkGA1UECAwCQ0ExHzAdBgNVBAoMFkFkdmFuY2Vk\n"
	"IE1pY3JvIERldmljZXMxETAPBgNVBAMMCFNFVi1WQ0VLMHYwEAYHKoZIzj0CAQYF\n"
	"K4EEACIDYgAEoXrM2Ase3rDTnzCqXAixTHBwBR0pP86ZoN5V5mKnwnaFeqNAZ82e\n"
	"z1IckEicDUB11W5hzNor5pbvsbnU6dFd0v6jKwJIQJrMkUgXIkAtMaI3POGwRlCY\n"
	"Bw9PY8x2IKPpo4IBFjCCARIwEAYJKwYBBAGceAEBBAMCAQAwFwYJKwYBBAGceAEC\n"
	"BAoWCE1pbGFuLUIwMBEGCisGAQQBnHgBAwEEAwIBAzARBgorBgEEAZx4AQMCBAMC\n"
	"AQAwEQYKKwYBBAGceAEDBAQDAgEAMBEGCisGAQQBnHgBAwUEAwIBADARBgorBgEE\n"
	"AZx4AQMGBAMCAQAwEQYKKwYBBAGceAEDBwQDAgEAMBEGCisGAQQBnHgBAwMEAwIB\n"
	"CDARBgorBgEEAZx4AQMIBAMCAXMwTQYJKwYBBAGceAEEBEDUlVTscX9OWw/msUO8\n"
	"8EBb164wRyft9GYD8qdq72o6vBXXrzjbdXA5Ap8O+s/QjiRDJIhHOMcrCC4vh6RN\n"
	"VB62MEYGCSqGSIb3DQEBCjA5oA8wDQYJYIZIAWUDBAICBQChHDAaBgkqhkiG9w0B\n"
	"AQgwDQYJYIZIAWUDBAICBQCiAwIBMKMDAgEBA4ICAQBOizm6CMC5PdFwNp2R50/f\n"
	"3g1GASo8XauAdQTaCfzCGYIEECIe+Unok4J0pR9pbphmd5KvsEemh1SEf28Mwqkq\n"
	"mhnXa9HAUzb+uJ/9xjBITtxFubxg2C7Y5z5b7IdeBpYf6cHJS45wRKDPTOJGfpbS\n"
	"O7EQ6+XkMtUaLlbMrGroJLHlfLaFI9cMi5rDkL1nmiXxg5xJiFPo68mVZLiAR168\n"
	"XOGhTA1uVypU5gNsTHAIp4tmOlMj04dRkK8b2rYD20bNv81TRGIzPWdGt6k5uVXG\n"
	"M7VdnkO9LxlQYAXqF/w11p/TIJ4e4WV0vyLuYRJVdfEiswEGQewwWPSaOPFHQZnr\n"
	"pLS2iLJV1S5C9YkM7H+1fZVYeVRR39D9Bk/rCIRCoqkaFUgZZzyVF2SivT6AqLsv\n"
	"Duqg/UsvwFn0VeqkYhBublC6uXD6Zsogl1qYibxfkyO+SAMKil2WLiHEgX34/vS3\n"
	"SaevwCHgFAuR9DxpGOJafjWd0b4p0r+LaU/QWAWt6J+H3Mwkml41XsL91R7iP8V5\n"
	"TlXRgA8s31BJYUSr3Gqryk75+qi+L2zfqf28Gt4vqTH54ekRXL3Hr7UlUo9NF3iL\n"
	"swkpXbOvLvrwiRQgmoMRNdUXp3lUB6XXYUAGAVNj+Y+Xby9Gle+/F4jVcvBqmh3G\n"
	"er9gvZzUPkpDeTL+fXarEA==\n"
	"-----END CERTIFICATE-----\n";

/* S3: trustee test-vlek.der */
static const char vlek_s3[] =
	"-----BEGIN CERTIFICATE-----\n"
	"MIIFIzCCAtegAwIBAgIBADBBBgkqhkiG9w0BAQowNKAPMA0GCWCGSAFlAwQCAgUA\n"
	"oRwwGgYJKoZIhvcNAQEIMA0GCWCGSAFlAwQCAgUAogMCATAwgYAxFDASBgNVBAsM\n"
	"C0VuZ2luZWVyaW5nMQswCQYDVQQGEwJVUzEUMBIGA1UEBwwLU2FudGEgQ2xhcmEx\n"
	"CzAJBgNVBAgMAkNBMR8wHQYDVQQKDBZBZHZhbmNlZCBNaWNybyBEZXZpY2VzMRcw\n"
	"FQYDVQQDDA5TRVYtVkxFSy1NaWxhbjAeFw0yNDEyMTAyMjE0MjFaFw0yNTEyMTAy\n"
	"MjE0MjFaMHoxFDASBgNVBAsMC0VuZ2luZWVyaW5nMQswCQYDVQQGEwJVUzEUMBIG\n"
	"A1UEBwwLU2FudGEgQ2xhcmExCzAJBgNVBAgMAkNBMR8wHQYDVQQKDBZBZHZhbmNl\n"
	"ZCBNaWNybyBEZXZpY2VzMREwDwYDVQQDDAhTRVYtVkxFSzB2MBAGByqGSM49AgEG\n"
	"BSuBBAAiA2IABFN1UuIT60plrJQ8/t4JhUrNJCvZKd0QOHglKJZrtXDDuklmXlRU\n"
	"wlUeC2l5zxfSjqgrNsrK4jKWXVR2L1d/sKpWEtbaV7BZti3uSKlV792f2EUXcAb1\n"
	"uIqdw5l6nmaxPqOB8jCB7zAQBgkrBgEEAZx4AQEEAwIBADAUBgkrBgEEAZx4AQIE\n"
	"BxYFTWlsYW4wEQYKKwYBBAGceAEDAQQDAgEEMBEGCisGAQQBnHgBAwIEAwIBADAR\n"
	"BgorBgEEAZx4AQMEBAMCAQAwEQYKKwYBBAGceAEDBQQDAgEAMBEGCisGAQQBnHgB\n"
	"AwYEAwIBADARBgorBgEEAZx4AQMHBAMCAQAwEQYKKwYBBAGceAEDAwQDAgEYMBIG\n"
	"CisGAQQBnHgBAwgEBAICANkwLAYJKwYBBAGceAEFBB8WHUNOPWNjLXVzLWVhc3Qt\n"
	"Mi5hbWF6b25hd3MuY29tMEEGCSqGSIb3DQEBCjA0oA8wDQYJYIZIAWUDBAICBQCh\n"
	"HDAaBgkqhkiG9w0BAQgwDQYJYIZIAWUDBAICBQCiAwIBMAOCAgEAVuUTs8xVE+LI\n"
	"TqRwHdehRaDzYfH9TsUzvwDgzjCBoPjzDvrkITkkyji3CfIoVk3pKg1jVQx4vum9\n"
	"4oQE7bLPERQluEBsJ9vMHzjq46JrAnKP60MM40uSGX5PGowJD/VHQKOil5DXA2LE\n"
	"tgNagWv3JxKHL8FJmkesd+wH41dVGbRN2pexS/o+qVreF7BcXwK3NfiqVUyAydZd\n"
	"dETf8KmdtcaYytvUzDR7HnwwYXjLmvswPan9cHPNGGbw77bdv1C8jZpYcxS0y+MJ\n"
	"xpnz8ghLBV23iFMBOjEnsZ5KSJwTR208ktQH9f/a3Z3s537itoUlcbLU8xl0Zd7R\n"
	"ZoITQDSAXegY/i/MEhC3YXqM97nd+QT7Bf9NKZkIHqjASYVxphE5CNfXSqEMynwf\n"
	"3kd0YuWqGnfr4f9qr0gjHGsPbKnldUXP3tiSF/0zyIpGJJZHsfKBGzQfUkiUr+n4\n"
	"5Faw1ZD512UVQsbw5I8gg07nQCnywuo9T7J02zLqQ31DCzR0hwJowM7oBazTDjyH\n"
	"9IQvanUxZoGPAXICuQYX+E1ITh/xJol059iP4t0iXMskOWTWbKzyxrNvyIvCNMlS\n"
	"+8gkKruOq+cWuyv7swgavd52tmlZHqh+ta1gaNu8x3Ldw7SHD/L3KfxlJp1os1i/\n"
	"lm5X2Nip1MF8kUGeD0CMadF35JDQkaY=\n"
	"-----END CERTIFICATE-----\n";


/* SHA-384 of bytes 0x000..0x29F of the four genuine reports (S1, S2, S3, S6). */
static const uint8_t genuine[4][48] = {
	{ 0x22, 0x41, 0xab, 0xa7, 0xc0, 0x8b, 0xe1, 0x42, 0xe1, 0xb6, 0x65, 0x85,
	  0x37, 0x65, 0x39, 0xb6, 0xd1, 0x6f, 0xa8, 0xda, 0xfd, 0x18, 0x5f, 0x7b,
	  0x9c, 0xcd, 0xaf, 0x4e, 0x9d, 0x85, 0x51, 0xe5, 0x1b, 0xce, 0xf2, 0x9c,
	  0xf3, 0x2a, 0xd0, 0xb9, 0x13, 0xfb, 0x2a, 0xf3, 0xf4, 0x91, 0x96, 0xae },
	{ 0x42, 0x9d, 0xfc, 0xcd, 0x12, 0xfa, 0x1a, 0xd3, 0x99, 0xae, 0x2d, 0x25,
	  0xdd, 0xc0, 0x5e, 0xd6, 0x08, 0xf6, 0x4c, 0xd3, 0x51, 0xc1, 0xa9, 0x46,
	  0x06, 0x8d, 0x41, 0xa6, 0xc7, 0x8a, 0x2a, 0x8a, 0x24, 0xfe, 0x9d, 0x15,
	  0xd6, 0xb2, 0xc9, 0x5a, 0x20, 0x94, 0x4f, 0x6d, 0xac, 0x22, 0x33, 0x11 },
	{ 0xe1, 0xcc, 0x57, 0xb0, 0xd0, 0x21, 0x88, 0x78, 0xe5, 0x10, 0x0e, 0x60,
	  0x1c, 0xc4, 0xdf, 0x9c, 0xcd, 0x67, 0x1e, 0x0c, 0xb6, 0x3d, 0xe7, 0xc6,
	  0x74, 0x26, 0x59, 0x80, 0x5b, 0x61, 0x33, 0x0a, 0xc5, 0xb8, 0x8b, 0x62,
	  0x0f, 0xc7, 0xd1, 0x34, 0x47, 0xfc, 0x15, 0xd9, 0x6e, 0x45, 0x32, 0x76 },
	{ 0x4a, 0x0a, 0x38, 0x16, 0x98, 0xd4, 0x1e, 0x9e, 0xd5, 0x6d, 0x29, 0x56,
	  0x9d, 0x78, 0x08, 0x99, 0x28, 0x93, 0xce, 0xe5, 0x43, 0x51, 0xd8, 0x38,
	  0x27, 0x16, 0x32, 0x6f, 0xa7, 0x59, 0x3b, 0x92, 0x66, 0x55, 0x26, 0xeb,
	  0x1c, 0xa9, 0x38, 0x91, 0xff, 0x24, 0x7c, 0x68, 0x54, 0x8b, 0x69, 0xc4 },
};

/* 2025-06-01T00:00:00Z: inside every staged certificate's validity. */
#define VERIFY_AT ((time_t)1748736000)

enum { S1, S2, S3, S6, NSETS };

static cf_snp_certs *sets[NSETS];

/* First 8 bytes of the CHIP_ID each VCEK was issued for. */
static const uint8_t chip8[NSETS][8] = {
	[S1] = { 0x3a, 0xc3, 0xfe, 0x21, 0xe1, 0x3f, 0xb0, 0x99 },
	[S2] = { 0xc3, 0x84, 0x27, 0xa3, 0x0d, 0x4c, 0x7a, 0xf9 },
	[S6] = { 0xd4, 0x95, 0x54, 0xec, 0x71, 0x7f, 0x4e, 0x5b },
};

static cf_snp_certs *load(const char *leaf, const char *mid)
{
	size_t n = strlen(mid) + strlen(ark_milan);
	char *chain = malloc(n + 1);
	cf_snp_certs *c = NULL;
	char why[200];
	if (!chain)
		abort();
	memcpy(chain, mid, strlen(mid));
	memcpy(chain + strlen(mid), ark_milan, strlen(ark_milan) + 1);
	cf_blob v = { (const uint8_t *)leaf, strlen(leaf) };
	cf_blob ch = { (const uint8_t *)chain, n };
	if (cf_snp_certs_load(&v, &ch, &c, why, sizeof(why)) != CF_OK)
		abort();
	free(chain);
	return c;
}

static void init_once(void)
{
	if (sets[S1])
		return;
	sets[S1] = load(vcek_s1, ask_milan);
	sets[S2] = load(vcek_s2, ask_milan);
	sets[S3] = load(vlek_s3, asvk_milan);
	sets[S6] = load(vcek_s6, ask_milan);
}

static const cf_snp_certs *pick(const uint8_t *data, size_t size)
{
	if (size != CF_SNP_REPORT_LEN)
		return sets[S1];
	uint32_t flags = (uint32_t)data[0x48] | (uint32_t)data[0x49] << 8;
	if (CF_SNP_SIGNING_KEY(flags) == CF_SNP_SIGNING_KEY_VLEK)
		return sets[S3];
	for (int i = 0; i < NSETS; i++)
		if (i != S3 && memcmp(data + 0x1A0, chip8[i], 8) == 0)
			return sets[i];
	return sets[S1];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	cf_verdict v;
	init_once();
	if (cf_snp_verify_report(pick(data, size), NULL, data, size, VERIFY_AT, &v) != CF_OK)
		abort();
	if (v.nchecks == 0)
		abort();
	if (cf_verdict_ok(&v)) {
		uint8_t h[CF_SHA384_LEN];
		bool known = false;
		if (size != CF_SNP_REPORT_LEN || cf_hash(CF_SHA384, data, CF_SNP_SIGNED_LEN, h) != CF_OK)
			abort();
		for (int i = 0; i < 4; i++)
			known |= memcmp(h, genuine[i], sizeof(h)) == 0;
		if (!known)
			abort(); /* a report AMD never signed verified */
	}
	json_t *j = cf_verdict_json(&v, cf_verdict_ok(&v));
	char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
	if (!s)
		abort();
	free(s);
	json_decref(j);
	cf_verdict_free(&v);
	return 0;
}
