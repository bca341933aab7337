# RT initialdata for the ticketwarden-rt real-server tests (loaded by .ci/start_rt.sh through
# RT_INITIALDATA; see docs/helpdesks/rt.md for the same set-up on a production RT).
#
# - the custom fields the desk configuration maps, applied to every queue (no ApplyTo = global)
# - a queue to escalate to
# - rights for customers who write in by e-mail (the mail gateway) to open and reply to tickets
# - the default scrip that reopens a resolved ticket on any correspondence is disabled, so the
#   reopen window (CLOSE-4) is ticketwarden's decision, as docs/helpdesks/rt.md recommends
@CustomFields = (
    { Name => 'Severity', Type => 'SelectSingle', LookupType => 'RT::Queue-RT::Ticket',
      Description => 'severity 1-4 as the customer states it',
      Values => [ { Name => 'critical', SortOrder => 1 }, { Name => 'high', SortOrder => 2 },
                  { Name => 'medium', SortOrder => 3 }, { Name => 'low', SortOrder => 4 } ] },
    { Name => 'Server URL', Type => 'FreeformSingle', LookupType => 'RT::Queue-RT::Ticket' },
    { Name => 'Module', Type => 'FreeformSingle', LookupType => 'RT::Queue-RT::Ticket' },
    { Name => 'Steps', Type => 'FreeformSingle', LookupType => 'RT::Queue-RT::Ticket' },
    { Name => 'Sample Machines', Type => 'FreeformSingle', LookupType => 'RT::Queue-RT::Ticket' },
    { Name => 'Version', Type => 'FreeformSingle', LookupType => 'RT::Queue-RT::Ticket' },
    { Name => 'Resolution', Type => 'FreeformSingle', LookupType => 'RT::Queue-RT::Ticket' },
    { Name => 'Tags', Type => 'FreeformMultiple', LookupType => 'RT::Queue-RT::Ticket' },
    { Name => 'Internal Notes', Type => 'FreeformSingle', LookupType => 'RT::Queue-RT::Ticket',
      Description => 'a field no ticketwarden configuration maps' },
);
@Queues = (
    { Name => 'Escalations', Description => 'second-level support', CorrespondAddress => '',
      CommentAddress => '' },
);
@ACL = (
    map { { GroupDomain => 'SystemInternal', GroupType => 'Everyone', Right => $_ } }
        qw(CreateTicket ReplyToTicket SeeQueue ShowTicket)
);
@Final = (
    sub {
        my $scrips = RT::Scrips->new( RT->SystemUser );
        $scrips->Limit( FIELD => 'Description', VALUE => 'On Correspond Open Inactive Tickets' );
        while ( my $scrip = $scrips->Next ) { $scrip->SetDisabled(1) }
    },
);
1;
