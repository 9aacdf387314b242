#!/usr/bin/perl
# Sign a message with Mail::DKIM::Signer and print it, LF line ends, on stdout.
#
# Usage: mail_dkim_sign.pl MSGFILE KEY SELECTOR DOMAIN [CANON] [ALGO]
#                          [--domainkeys nofws|simple] [--also-dkim] [--dk-headers]
#
#   CANON  DKIM canonicalization, default relaxed/relaxed (any c= value Mail::DKIM knows)
#   ALGO   rsa-sha256 (default) or rsa-sha1
#   --domainkeys M   make a DomainKey-Signature (RFC 4870, rsa-sha1, c=M) instead
#                    of a DKIM-Signature
#   --also-dkim      with --domainkeys: add a DKIM-Signature too (printed above the
#                    DomainKey-Signature, so the DK signature, which covers every
#                    header below it, stays valid)
#   --dk-headers     with --domainkeys: add h= (the headers present) to the DK signature
#
# KEY: an RSA private key in PEM, PKCS#1 or PKCS#8 (what `openssl genpkey` makes).
# The input may use LF or CRLF line ends; it is signed in its CRLF wire form.
use strict;
use warnings;
use Mail::DKIM::Signer;
use Mail::DKIM::Signature;
use Mail::DKIM::DkSignature;
use Mail::DKIM::PrivateKey;
use Crypt::OpenSSL::RSA;

my ($dk_method, $also_dkim, $dk_headers) = (undef, 0, 0);
my @pos;
while (@ARGV) {
    my $a = shift @ARGV;
    if ($a eq '--domainkeys') {
        $dk_method = shift @ARGV;
        die "$0: --domainkeys needs nofws or simple\n"
          unless defined $dk_method && $dk_method =~ /^(nofws|simple)$/;
    } elsif ($a eq '--also-dkim') {
        $also_dkim = 1;
    } elsif ($a eq '--dk-headers') {
        $dk_headers = 1;
    } else {
        push @pos, $a;
    }
}
if (@pos < 4 || @pos > 6) {
    print STDERR "usage: $0 MSGFILE KEY SELECTOR DOMAIN [relaxed/relaxed] [rsa-sha256|rsa-sha1]"
      . " [--domainkeys nofws|simple] [--also-dkim] [--dk-headers]\n";
    exit 2;
}
my ($file, $keyfile, $selector, $domain, $canon, $algo) = @pos;
$canon //= 'relaxed/relaxed';
$algo  //= 'rsa-sha256';

open(my $kfh, '<', $keyfile) or die "$0: $keyfile: $!\n";
my $pem = do { local $/; <$kfh> };
close $kfh;
my $rsa = Crypt::OpenSSL::RSA->new_private_key($pem);
my $key = Mail::DKIM::PrivateKey->load(Cork => $rsa);

open(my $fh, '<:raw', $file) or die "$0: $file: $!\n";
my $data = do { local $/; <$fh> };
close $fh;

my $policy = sub {
    my $signer = shift;
    if (!defined $dk_method || $also_dkim) {
        $signer->add_signature(Mail::DKIM::Signature->new(
            Algorithm => $algo,
            Method    => $canon,
            Domain    => $domain,
            Selector  => $selector,
            Headers   => $signer->headers,
            Key       => $key,
        ));
    }
    if (defined $dk_method) {
        $signer->add_signature(Mail::DKIM::DkSignature->new(
            Algorithm => 'rsa-sha1',
            Method    => $dk_method,
            Domain    => $domain,
            Selector  => $selector,
            Query     => 'dns',
            ($dk_headers ? (Headers => $signer->headers) : ()),
            Key       => $key,
        ));
    }
    return;
};

my $signer = Mail::DKIM::Signer->new(Policy => $policy, Key => $key);
my @lines = split /\r?\n/, $data, -1;
my $last = pop @lines;
$signer->PRINT("$_\015\012") for @lines;
$signer->PRINT($last) if defined $last && length $last;
$signer->CLOSE;

my $out = '';
for my $sig ($signer->signatures) {
    $out .= $sig->as_string . "\015\012";
}
$out =~ s/\r\n/\n/g;
$data =~ s/\r\n/\n/g;
binmode STDOUT;
print $out, $data;
exit 0;
