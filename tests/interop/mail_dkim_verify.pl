#!/usr/bin/perl
# Verify every DKIM-Signature and DomainKey-Signature of a message with
# Mail::DKIM::Verifier, keys from a loopback DNS server.
#
# Usage: mail_dkim_verify.pl MSGFILE PORT [--ignore-unsupported]
#
# MSGFILE may use LF (qmail's form) or CRLF line ends; each line is fed to the
# verifier with CRLF. Prints one line per signature, in header order:
#     <index> <DKIM|DomainKeys> d=<domain> s=<selector> a=<algorithm> <result> [(<detail>)]
# where result is Mail::DKIM's word (pass, fail, invalid, temperror, none...).
# Exit 0 only if there is at least one signature and all pass; 1 otherwise;
# 2 for a usage or file error. --ignore-unsupported skips signatures whose
# algorithm this Mail::DKIM does not know (Debian 12's 1.20230212 has no
# ed25519-sha256): they are printed as "skipped" and neither pass nor fail,
# but at least one signature must still pass.
use strict;
use warnings;
use Mail::DKIM::Verifier;
use Mail::DKIM::DNS;
use Net::DNS::Resolver;

my @args = grep { $_ ne '--ignore-unsupported' } @ARGV;
my $ignore_unsupported = @args != @ARGV;
if (@args != 2 || $args[1] !~ /^\d+$/) {
    print STDERR "usage: $0 MSGFILE PORT [--ignore-unsupported]\n";
    exit 2;
}
my ($file, $port) = @args;

my $res = Net::DNS::Resolver->new(
    nameservers => ['127.0.0.1'],
    port        => $port,
    recurse     => 0,
    retry       => 1,
    retrans     => 1,
    udp_timeout => 3,
    tcp_timeout => 3,
    defnames    => 0,
    dnsrch      => 0,
    igntc       => 0,      # fall back to TCP on truncation
);
Mail::DKIM::DNS::resolver($res);
$Mail::DKIM::DNS::TIMEOUT = 8;

open(my $fh, '<:raw', $file) or do { print STDERR "$0: $file: $!\n"; exit 2 };
my $data = do { local $/; <$fh> };
close $fh;

my $dkim = Mail::DKIM::Verifier->new();
# Split into lines; a CR right before an LF belongs to the line end.
my @lines = split /\r?\n/, $data, -1;
my $last = pop @lines;            # text after the last line end (usually '')
$dkim->PRINT("$_\015\012") for @lines;
$dkim->PRINT($last) if defined $last && length $last;
$dkim->CLOSE;

my @sigs = $dkim->signatures;
if (!@sigs) {
    print "no signatures (result: ", $dkim->result, ")\n";
    exit 1;
}
my ($all_ok, $passes, $i) = (1, 0, 0);
for my $sig (@sigs) {
    my $type = $sig->isa('Mail::DKIM::DkSignature') ? 'DomainKeys' : 'DKIM';
    my $result = $sig->result // 'none';
    my $detail = $sig->result_detail // '';
    my $algo = $sig->algorithm // '?';
    my $word = $result;
    if ($result ne 'pass' && $ignore_unsupported
        && ($detail =~ /unsupported|unknown algorithm/i || $algo =~ /ed25519/i)) {
        $word = 'skipped';
    } elsif ($result eq 'pass') {
        $passes++;
    } else {
        $all_ok = 0;
    }
    my $line = sprintf("%d %s d=%s s=%s a=%s %s", $i, $type, $sig->domain // '?',
                       $sig->selector // '?', $algo, $word);
    $line .= " ($detail)" if $detail ne '' && $detail ne $result;
    $line =~ s/[\r\n]+/ /g;
    print "$line\n";
    $i++;
}
exit(($all_ok && $passes > 0) ? 0 : 1);
